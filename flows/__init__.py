"""Prefect flows of GEC Reports. Importing the package applies flows.prefect_patches (heartbeat join fix)."""

from flows import prefect_patches

prefect_patches.apply()
