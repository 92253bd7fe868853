"""The database behind the store: a SQLite file (the default) or a PostgreSQL server shared
by several machines. Connection settings, migrations, transactions, and one repository per
concept, each sharing this one connection.
"""

from __future__ import annotations

import fcntl
import sqlite3
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from newsletter.store import schema
from newsletter.store.claims import Claims
from newsletter.store.dialect import (
    POSTGRES_DIALECT,
    SQLITE_DIALECT,
    Connection,
    is_postgres_url,
)
from newsletter.store.limits import RateLimits
from newsletter.store.papers import Papers
from newsletter.store.runs import Runs
from newsletter.store.sends import Sends
from newsletter.store.subscribers import Subscribers
from newsletter.store.upvotes import UpvoteHistory

# PostgreSQL advisory lock keys (one 64-bit namespace per database).
WRITE_LOCK = 0x6E6C_0001  # held by every write transaction, as SQLite's BEGIN IMMEDIATE
MIGRATE_LOCK = 0x6E6C_0002


def is_busy(exc: BaseException) -> bool:
    """True for the error SQLite raises when another connection held the lock too long."""
    code = getattr(exc, "sqlite_errorcode", None)
    return (
        isinstance(exc, sqlite3.OperationalError)
        and code is not None
        and code & 0xFF
        in (
            sqlite3.SQLITE_BUSY,
            sqlite3.SQLITE_LOCKED,
        )
    )


class Database:
    """A SQLite file holding papers, subscribers, interests, feedback, sends and fetch state.

    `papers`, `subscribers`, `sends`, `runs`, `limits` and `upvotes` are its repositories.
    The connection is in autocommit mode: each statement commits on its own unless inside
    `transaction()`.
    """

    def __init__(
        self,
        target: str | Path,
        *,
        busy_timeout: float = 30.0,
        password: str = "",
        migrate: bool = True,
    ) -> None:
        """Open (and migrate) the database: a `postgresql://` URL (with `password`, when the
        URL and libpq's usual sources lack one), or a SQLite file path. `busy_timeout` is how
        many seconds a SQLite statement waits for another connection's write lock before
        raising `sqlite3.OperationalError`. `migrate=False` opens without upgrading the schema
        (for `newsletter migrate`, which reports the versions)."""
        self.conn: Connection
        if is_postgres_url(target):
            from newsletter.store.postgres import PgConnection

            self.url = str(target)
            self.path = Path()
            self.dialect = POSTGRES_DIALECT
            self.conn = PgConnection(self.url, password)
        else:
            self.url = ""
            self.path = Path(target)
            self.dialect = SQLITE_DIALECT
            self.conn = self._open_sqlite(target, busy_timeout)
        if migrate:
            self.migrate()
        self.claims = Claims(self)
        self.papers = Papers(self)
        self.limits = RateLimits(self)
        self.runs = Runs(self)
        self.sends = Sends(self)
        self.subscribers = Subscribers(self)
        self.upvotes = UpvoteHistory(self)

    def _open_sqlite(self, path: str | Path, busy_timeout: float) -> sqlite3.Connection:
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            str(path), timeout=busy_timeout, check_same_thread=False, isolation_level=None
        )
        conn.execute("PRAGMA foreign_keys = ON")
        if str(path) != ":memory:":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    @property
    def postgres(self) -> bool:
        return self.dialect.postgres

    @property
    def location(self) -> str:
        """Where the data lives, for people: the file, or the URL without its password."""
        if self.postgres:
            from newsletter.store.postgres import redact

            return redact(self.url)
        return str(self.path)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self, *, exclusive: bool = True) -> Iterator[None]:
        """Run the block as one write transaction: all of it is committed, or none of it.

        BEGIN IMMEDIATE takes the write lock up front, so a read inside the block cannot be
        invalidated by another process writing before this one does; on PostgreSQL an advisory
        lock held to the end of the transaction gives every repository the same guarantee. A
        block inside another block joins the outer transaction (which commits or rolls back
        for both).
        """
        conn = self.conn
        if conn.in_transaction:
            yield
            return
        if self.postgres:
            conn.execute("BEGIN")
            if exclusive:
                conn.execute(f"SELECT pg_advisory_xact_lock({WRITE_LOCK})")
        else:
            conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # some errors already rolled the transaction back
                conn.execute("ROLLBACK")
            raise

    @contextmanager
    def advisory_lock(self, name: str) -> Iterator[bool]:
        """A lock every process sharing this database sees, held for the block; yields whether
        this process got it (it never waits). PostgreSQL: a session advisory lock (a killed
        process's session ends, and the lock with it); SQLite: `flock` on a file beside the
        database (released by the kernel when the process dies)."""
        if self.postgres:
            key = zlib.crc32(name.encode())
            got = bool(self.conn.execute("SELECT pg_try_advisory_lock(?)", [key]).fetchone()[0])
            try:
                yield got
            finally:
                if got:
                    self.conn.execute("SELECT pg_advisory_unlock(?)", [key])
            return
        with open(f"{self.path}.{name}.lock", "a+", encoding="utf-8") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    @property
    def schema_version(self) -> int:
        if not self.postgres:
            return int(self.conn.execute("PRAGMA user_version").fetchone()[0])
        row = self.conn.execute("SELECT to_regclass('newsletter_schema') IS NOT NULL").fetchone()
        if not row[0]:
            return 0
        found = self.conn.execute("SELECT max(version) FROM newsletter_schema").fetchone()
        return int(found[0] or 0)

    def migrate(self) -> None:
        """Apply pending migrations, each in its own transaction."""
        if self.schema_version >= len(schema.MIGRATIONS):
            return
        if self.postgres:
            self._migrate_postgres()
        else:
            self._migrate_sqlite()

    def _migrate_postgres(self) -> None:
        """PostgreSQL changes tables in place and checks foreign keys as it goes; the migrate
        lock makes a second process wait, then find the work done."""
        migrator = schema.Migrator(self.conn, self.dialect)
        for number in range(1, len(schema.MIGRATIONS) + 1):
            with self.transaction():
                self.conn.execute(f"SELECT pg_advisory_xact_lock({MIGRATE_LOCK})")
                self.conn.execute(
                    "CREATE TABLE IF NOT EXISTS newsletter_schema"
                    " (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ DEFAULT now())"
                )
                if self.schema_version >= number:
                    continue
                schema.MIGRATIONS[number - 1](migrator)
                self.conn.execute("INSERT INTO newsletter_schema (version) VALUES (?)", [number])

    def _migrate_sqlite(self) -> None:
        """Foreign keys are off while migrating: rebuilding a table (the only way SQLite changes
        a column) drops the old one, and with foreign keys on that drop would cascade into
        every child row. `PRAGMA foreign_key_check` before each commit keeps them honest.
        """
        current = self.schema_version
        migrator = schema.Migrator(self.conn, self.dialect)
        self.conn.execute("PRAGMA foreign_keys = OFF")  # a no-op inside a transaction: set it here
        try:
            for number, step in enumerate(schema.MIGRATIONS[current:], start=current + 1):
                with self.transaction():
                    if self.schema_version >= number:  # another process migrated meanwhile
                        continue
                    step(migrator)
                    broken = self.conn.execute("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise sqlite3.IntegrityError(
                            f"migration {number} left rows without their parent: {broken[:5]}"
                        )
                    self.conn.execute(f"PRAGMA user_version = {number}")
        finally:
            self.conn.execute("PRAGMA foreign_keys = ON")
