"""Configuration from the environment (see docs/deployment.md)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_DATA_DIR = "cubebase-data"


@dataclass
class Config:
    database_url: str = ""
    redis_url: str | None = None
    secret_key: str = ""
    timezone: str = "UTC"
    data_dir: Path = field(default_factory=lambda: Path(DEFAULT_DATA_DIR))
    smtp: dict = field(default_factory=dict)
    max_text_length: int = 100_000  # longest text value accepted in one field
    max_bulk_rows: int = 1000  # rows in one bulk API call
    max_request_bytes: int = 16 * 1024 * 1024  # largest request body
    api_rate_limit: int = 1200  # API requests per token (or session user) per window; 0: no limit
    api_rate_window: int = 60  # seconds
    api_usage_flush_seconds: float = 10.0  # how often a process writes its token-use counts

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'cubebase.sqlite').resolve()}"
        if not self.secret_key:
            # A per-process random key is safe (sessions just do not survive a restart);
            # production sets CUBEBASE_SECRET_KEY so all workers share one.
            self.secret_key = secrets.token_hex(32)

    @classmethod
    def from_env(cls, **overrides) -> Config:
        env = os.environ
        values = {
            "database_url": env.get("CUBEBASE_DATABASE_URL", ""),
            "redis_url": env.get("CUBEBASE_REDIS_URL") or None,
            "secret_key": env.get("CUBEBASE_SECRET_KEY", ""),
            "timezone": env.get("CUBEBASE_TIMEZONE", "UTC"),
            "data_dir": Path(env.get("CUBEBASE_DATA_DIR", DEFAULT_DATA_DIR)),
            "api_rate_limit": _int_env(env, "CUBEBASE_API_RATE_LIMIT"),
            "api_rate_window": _int_env(env, "CUBEBASE_API_RATE_WINDOW"),
            "smtp": {
                k[len("CUBEBASE_SMTP_") :].lower(): v
                for k, v in env.items()
                if k.startswith("CUBEBASE_SMTP_")
            },
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**{k: v for k, v in values.items() if v is not None})  # unset: defaults


def _int_env(env, name: str) -> int | None:
    """A whole number from the environment; unset: None (the default applies)."""
    from .errors import ConfigError

    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not `{raw}`") from None
    if value < 0:
        raise ConfigError(f"{name} must not be negative")
    return value
