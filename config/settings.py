"""Settings from the environment (and a `.env` file): one place, typed, with SPEC §8 defaults."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TIMEZONE = ZoneInfo("Asia/Ho_Chi_Minh")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GEC_", env_file=".env", extra="ignore")

    database_url: str = ""  # empty: the embedded SQLite file under data/
    reference_dir: Path = PROJECT_ROOT / "reference"
    inbox_dir: Path = PROJECT_ROOT / "data" / "inbox"
    archive_dir: Path = PROJECT_ROOT / "data" / "archive"
    output_dir: Path = PROJECT_ROOT / "outputs"
    data_dir: Path = PROJECT_ROOT / "data"
    # The Word report's number before "/BC-GDĐT" (empty: left blank for the office to write in).
    report_number: str = ""

    imap_host: str = "127.0.0.1"
    imap_port: int = 993
    imap_user: str = ""
    imap_password: SecretStr = SecretStr("")
    imap_folder: str = "INBOX"
    imap_ssl: str = "ssl"  # ssl | starttls | plain (plain only for loopback tests)

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 465
    smtp_user: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_from: str = "Phòng GD&ĐT Quận 8 <gec@q8.test>"
    smtp_ssl: str = "ssl"  # ssl | starttls | plain

    ops_email: str = ""
    # Who answers a school's question or reply to our mail (a forward); empty: GEC_OPS_EMAIL.
    specialist_email: str = ""
    # The office's person named in every reply to a school (empty: the reply names nobody).
    contact_name: str = ""
    contact_phone: str = ""
    contact_email: str = ""
    max_file_mb: float = Field(default=20, gt=0)
    task_runner: str = "threads"  # "threads" or a Dask scheduler address (tcp://host:port)

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'gec.sqlite3'}"


@lru_cache(maxsize=1)
def _from_environment() -> Settings:
    return Settings()


class _SettingsSource:
    """The process's settings: an active `use_settings` override, else the environment's (cached)."""

    def __init__(self) -> None:
        # Module-level, not a contextvar: Prefect runs tasks in worker threads, which would not
        # inherit a contextvar set by the command that started the flow.
        self._override: Settings | None = None
        self._lock = threading.Lock()

    def __reduce__(self) -> str:
        # Pickled by name (Dask ships functions that use it by value): each process has its own.
        return "get_settings"

    def __call__(self) -> Settings:
        """Return the settings in force."""
        override = self._override
        return override if override is not None else _from_environment()

    def cache_clear(self) -> None:
        """Forget the cached environment settings (after a test changes GEC_* variables)."""
        _from_environment.cache_clear()

    @contextmanager
    def override(self, settings: Settings) -> Iterator[Settings]:
        """Make `settings` the ones in force, for every thread, until the block ends."""
        with self._lock:
            previous, self._override = self._override, settings
        try:
            yield settings
        finally:
            with self._lock:
                self._override = previous


get_settings = _SettingsSource()


def use_settings(settings: Settings) -> contextlib.AbstractContextManager[Settings]:
    """Run the block with `settings` instead of the environment's (e.g. `gec demo`'s own folders)."""
    return get_settings.override(settings)
