"""Shared pytest setup; area fixtures live in tests/support/ and are registered here."""

from __future__ import annotations

import os

# Tests never read the developer's own .env or database.
os.environ.setdefault("GEC_DATABASE_URL", "")

pytest_plugins = ["tests.support.databases", "tests.support.mailservers", "tests.support.prefect_harness"]
