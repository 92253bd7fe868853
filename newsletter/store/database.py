"""The SQLite file behind the store: connection settings (WAL, busy timeout), migrations,
transactions, and one repository per concept, each sharing this one connection.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from newsletter.store import schema
from newsletter.store.limits import RateLimits
from newsletter.store.papers import Papers
from newsletter.store.runs import Runs
from newsletter.store.sends import Sends
from newsletter.store.subscribers import Subscribers
from newsletter.store.upvotes import UpvoteHistory


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

    def __init__(self, path: str | Path, *, busy_timeout: float = 30.0) -> None:
        """Open (and migrate) the file. `busy_timeout` is how many seconds a statement waits
        for another connection's write lock before raising `sqlite3.OperationalError`."""
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            str(path), timeout=busy_timeout, check_same_thread=False, isolation_level=None
        )
        self.db = sqlite_utils.Database(conn)
        self.db.execute("PRAGMA foreign_keys = ON")
        if str(path) != ":memory:":
            self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = NORMAL")
        self.migrate()
        self.papers = Papers(self)
        self.limits = RateLimits(self)
        self.runs = Runs(self)
        self.sends = Sends(self)
        self.subscribers = Subscribers(self)
        self.upvotes = UpvoteHistory(self)

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    def close(self) -> None:
        self.db.conn.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Run the block as one write transaction: all of it is committed, or none of it.

        BEGIN IMMEDIATE takes the write lock up front, so a read inside the block cannot be
        invalidated by another process writing before this one does. A block inside another
        block joins the outer transaction (which commits or rolls back for both).
        """
        conn = self.db.conn
        if conn.in_transaction:
            yield
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # some errors already rolled the transaction back
                conn.execute("ROLLBACK")
            raise

    @property
    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self) -> None:
        """Apply pending migrations, each in its own transaction.

        Foreign keys are off while migrating: rebuilding a table (the only way SQLite changes
        a column) drops the old one, and with foreign keys on that drop would cascade into
        every child row. `PRAGMA foreign_key_check` before each commit keeps them honest.
        """
        current = self.schema_version
        if current >= len(schema.MIGRATIONS):
            return
        self.db.execute("PRAGMA foreign_keys = OFF")  # a no-op inside a transaction: set it here
        try:
            for number, step in enumerate(schema.MIGRATIONS[current:], start=current + 1):
                with self.transaction():
                    if self.schema_version >= number:  # another process migrated meanwhile
                        continue
                    step(self.db)
                    broken = self.db.execute("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise sqlite3.IntegrityError(
                            f"migration {number} left rows without their parent: {broken[:5]}"
                        )
                    self.db.execute(f"PRAGMA user_version = {number}")
        finally:
            self.db.execute("PRAGMA foreign_keys = ON")
