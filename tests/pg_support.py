"""The tests' PostgreSQL server: `newsletter.store.pg_server` (shared with the benchmark)."""

from newsletter.store.pg_server import POSTGRES_INSTALL, PostgresServer, running_postgres

__all__ = ["POSTGRES_INSTALL", "PostgresServer", "running_postgres"]
