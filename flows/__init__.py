"""Prefect flows; importing the package (every worker and flow-run process does) makes files private."""

from config.private_files import use_private_umask

use_private_umask()  # archive, outputs and SQLite hold confidential data: created 0600/0700
