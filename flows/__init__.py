"""Prefect flows of GEC Reports.

Importing the package (every worker and flow-run process does) makes new files private (the archive,
outputs and SQLite file hold confidential data: created 0600/0700) and applies
flows.prefect_patches (the heartbeat join fix).
"""

from config.private_files import use_private_umask
from flows import prefect_patches

use_private_umask()
prefect_patches.apply()
