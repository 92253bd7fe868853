"""The [storage] section: where the data lives, a SQLite file (the default) or PostgreSQL.

`database` is a path (relative to the config file's folder) or a `postgresql://user@host/db`
URL; the password comes from `NEWSLETTER_DATABASE_PASSWORD` or libpq's usual sources (the
URL, `PGPASSWORD`, `~/.pgpass`). See docs/postgresql.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PASSWORD_ENV = "NEWSLETTER_DATABASE_PASSWORD"


@dataclass(frozen=True)
class StorageConfig:
    data_dir: str = "data"
    database: str = "data/newsletter.db"

    def target(self, resolve: Callable[[str], Path]) -> str | Path:
        """The PostgreSQL URL as written, or the SQLite file's path resolved by `resolve`."""
        if self.database.startswith(("postgresql://", "postgres://")):
            return self.database
        return resolve(self.database)
