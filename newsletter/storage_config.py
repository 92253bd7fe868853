"""The [storage] section: where the data lives, a SQLite file (the default) or PostgreSQL.

`database` is a path (relative to the config file's folder) or a `postgresql://user@host/db`
URL; the password comes from `NEWSLETTER_DATABASE_PASSWORD` or libpq's usual sources (the
URL, `PGPASSWORD`, `~/.pgpass`). See docs/postgresql.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from newsletter.errors import ConfigError

PASSWORD_ENV = "NEWSLETTER_DATABASE_PASSWORD"
# Subscribers one send worker takes at a time, at most: well under the parameters one
# statement may bind (65,535 on PostgreSQL; 999 in old SQLite builds, which no worker uses).
MAX_SEND_BATCH = 10_000


@dataclass(frozen=True)
class StorageConfig:
    data_dir: str = "data"
    database: str = "data/newsletter.db"
    # Send workers sharing a PostgreSQL store (docs/postgresql.md): subscribers a worker takes
    # at a time, and how long they stay its own before another worker may take them.
    send_batch: int = 100
    send_lease_seconds: int = 600

    def __post_init__(self) -> None:
        if not 1 <= self.send_batch <= MAX_SEND_BATCH:
            # A batch is taken and released in one statement each, binding every subscriber.
            raise ConfigError(
                f"storage.send_batch must be between 1 and {MAX_SEND_BATCH:,}"
                f" (got {self.send_batch})"
            )
        if self.send_lease_seconds < 10:
            raise ConfigError("storage.send_lease_seconds must be at least 10")

    def target(self, resolve: Callable[[str], Path]) -> str | Path:
        """The PostgreSQL URL as written, or the SQLite file's path resolved by `resolve`."""
        if self.database.startswith(("postgresql://", "postgres://")):
            return self.database
        return resolve(self.database)
