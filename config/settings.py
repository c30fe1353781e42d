"""Settings from the environment (and a `.env` file): one place, typed, with SPEC §8 defaults."""

from __future__ import annotations

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
def get_settings() -> Settings:
    return Settings()
