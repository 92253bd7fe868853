"""PostgreSQL connections shaped like the sqlite3 ones the repositories use.

A `PgConnection` takes a psycopg 3 connection from a process-wide pool (one per URL) and offers
`execute`, `executemany` and `in_transaction` as sqlite3 does, rewriting each statement with
`dialect.POSTGRES_DIALECT`. It runs in autocommit mode, as the SQLite connection does: each
statement commits on its own unless inside `Database.transaction()`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import psycopg
from psycopg import pq
from psycopg_pool import ConnectionPool

from newsletter.errors import DatabaseUnavailable
from newsletter.store.dialect import POSTGRES_DIALECT

_POOLS: dict[tuple[str, str], ConnectionPool] = {}
_POOLS_LOCK = threading.Lock()
# Connections one process keeps open per database URL (the web app holds one per thread).
POOL_SIZE = 32
# Seconds to wait for a free pooled connection (or for the server) before giving up.
CONNECT_TIMEOUT = 30.0


def _pool(url: str, password: str) -> ConnectionPool:
    key = (url, password)
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            kwargs: dict[str, Any] = {"autocommit": True}
            if password:
                kwargs["password"] = password
            pool = ConnectionPool(
                url,
                kwargs=kwargs,
                min_size=1,
                max_size=POOL_SIZE,
                timeout=CONNECT_TIMEOUT,
                open=False,
                name="newsletter",
            )
            try:
                pool.open(wait=True, timeout=CONNECT_TIMEOUT)
            except Exception as exc:
                pool.close()
                raise DatabaseUnavailable(
                    f"cannot connect to PostgreSQL at {redact(url)} within {CONNECT_TIMEOUT:g} s"
                    " (is the server up, and the URL, user and password right? The password"
                    " comes from NEWSLETTER_DATABASE_PASSWORD, PGPASSWORD or ~/.pgpass)"
                ) from exc
            _POOLS[key] = pool
        return pool


def close_pools(url: str | None = None) -> None:
    """Close the pooled connections (of `url`, or of every URL)."""
    with _POOLS_LOCK:
        keys = [k for k in _POOLS if url is None or k[0] == url]
        pools = [_POOLS.pop(k) for k in keys]
    for pool in pools:
        pool.close()


def redact(url: str) -> str:
    """The URL without a password in it, for messages."""
    head, sep, tail = url.partition("@")
    if not sep or ":" not in head.split("//", 1)[-1]:
        return url
    scheme, _, userinfo = head.partition("//")
    return f"{scheme}//{userinfo.split(':', 1)[0]}:***@{tail}"


class PgCursor:
    """The rows of one statement, read as a sqlite3 cursor's are."""

    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cursor.fetchall())


class PgConnection:
    """One pooled psycopg connection with the sqlite3 methods the store calls."""

    def __init__(self, url: str, password: str = "") -> None:
        self.url = url
        self._pool = _pool(url, password)
        self._raw: psycopg.Connection[Any] | None = self._pool.getconn()

    @property
    def raw(self) -> psycopg.Connection[Any]:
        if self._raw is None:
            raise psycopg.InterfaceError("the connection is closed")
        return self._raw

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> PgCursor:
        statement = POSTGRES_DIALECT.sql(sql, bound=bool(params))
        return PgCursor(self.raw.execute(statement, list(params) if params else None))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]], /) -> None:
        batch = [list(r) for r in rows]
        if batch:
            with self.raw.cursor() as cur:
                cur.executemany(POSTGRES_DIALECT.sql(sql), batch)

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != pq.TransactionStatus.IDLE

    def close(self) -> None:
        raw, self._raw = self._raw, None
        if raw is not None:
            self._pool.putconn(raw)
