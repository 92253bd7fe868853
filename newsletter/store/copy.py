"""Copy a SQLite installation into an empty PostgreSQL database, row for row, and prove it.

Both sides are migrated to the same schema first. Tables are copied parents first (by their
foreign keys) in one PostgreSQL transaction with COPY, identity counters continue after the
highest id SQLite ever handed out (so a deleted row's id is never reused), and every table is
then read back on both sides in primary-key order: the counts and a SHA-256 over every value
must match.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from newsletter.errors import NewsletterError
from newsletter.store.database import Database

# SQLite-only tables: the full-text index (PostgreSQL indexes the papers table itself).
_SKIP_PREFIXES = ("sqlite_", "papers_fts")


@dataclass(frozen=True)
class TableCopy:
    table: str
    source_rows: int
    target_rows: int
    source_sha256: str
    target_sha256: str

    @property
    def ok(self) -> bool:
        return (self.source_rows, self.source_sha256) == (self.target_rows, self.target_sha256)


def _tables(source: Database) -> list[str]:
    """SQLite's tables, parents before the tables that reference them."""
    names = [
        r[0]
        for r in source.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        ).fetchall()
        if not r[0].startswith(_SKIP_PREFIXES)
    ]
    parents = {
        name: {
            r[2]
            for r in source.conn.execute(f"PRAGMA foreign_key_list({name})").fetchall()
            if r[2] != name
        }
        for name in names
    }
    ordered: list[str] = []
    while len(ordered) < len(names):
        ready = [n for n in names if n not in ordered and parents[n] <= set(ordered)]
        if not ready:
            raise NewsletterError(
                f"circular foreign keys among {sorted(set(names) - set(ordered))}"
            )
        ordered += ready
    return ordered


def _columns(source: Database, table: str) -> tuple[list[str], list[tuple[str, bool]]]:
    """The table's columns, and its primary key's (every column when it has none), each with
    whether it is text."""
    info = source.conn.execute(f"PRAGMA table_info({table})").fetchall()
    columns = [r[1] for r in info]
    key = [(r[1], "TEXT" in str(r[2]).upper()) for r in sorted(info, key=lambda r: r[5]) if r[5]]
    return columns, key or [(r[1], "TEXT" in str(r[2]).upper()) for r in info]


def _value(v: Any) -> bytes:
    if v is None:
        return b"\x00N"
    if isinstance(v, float):
        return b"f" + repr(v).encode()
    if isinstance(v, int):
        return b"i" + str(v).encode()
    return b"s" + str(v).encode("utf-8", "surrogatepass")


def _digest(rows: Iterable[tuple[Any, ...]]) -> tuple[int, str]:
    h, n = hashlib.sha256(), 0
    for row in rows:
        h.update(b"\x1e".join(_value(v) for v in row) + b"\x1d")
        n += 1
    return n, h.hexdigest()


def _rows(
    db: Database, table: str, columns: list[str], key: list[tuple[str, bool]]
) -> Iterator[Any]:
    """The rows in key order; text compared byte by byte on both sides, as SQLite does
    (PostgreSQL's own collation may follow the locale)."""
    order = ", ".join(f'{c} COLLATE "C"' if text and db.postgres else c for c, text in key)
    yield from db.conn.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {order}")


def _is_empty(target: Database, tables: list[str]) -> list[str]:
    return [t for t in tables if target.conn.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone()]


def copy_database(source: Database, target: Database) -> list[TableCopy]:
    """Copy every table of `source` (SQLite) into `target` (an empty PostgreSQL database)."""
    if source.postgres or not target.postgres:
        raise NewsletterError("copy-db copies a SQLite file into a PostgreSQL database")
    tables = _tables(source)
    missing = [
        t for t in tables if not target.conn.execute("SELECT to_regclass(?)", [t]).fetchone()[0]
    ]
    if missing:
        raise NewsletterError(
            f"{target.location} has no table {', '.join(missing)}: they come from a newer"
            " or an operator's schema; migrate both to the same version first"
        )
    full = _is_empty(target, tables)
    if full:
        raise NewsletterError(
            f"{target.location} already holds rows (in {', '.join(full)}): copy-db fills an"
            " empty database only, so nothing is overwritten. Create a fresh one"
        )
    sequences = dict(
        source.conn.execute("SELECT name, seq FROM sqlite_sequence").fetchall()
        if source.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'"
        ).fetchone()
        else []
    )
    raw = target.conn.raw  # type: ignore[attr-defined]
    with target.transaction():
        for table in tables:
            columns, _ = _columns(source, table)
            cur = source.conn.execute(f"SELECT {', '.join(columns)} FROM {table}")
            with (
                raw.cursor() as pg,
                pg.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as out,
            ):
                for row in cur:
                    out.write_row(row)
            if "id" in columns:
                _continue_ids(target, table, int(sequences.get(table, 0)))
    return [_verify(source, target, table) for table in tables]


def _continue_ids(target: Database, table: str, highest_ever: int) -> None:
    """Start the table's identity after both its highest id and SQLite's AUTOINCREMENT mark."""
    sequence = target.conn.execute("SELECT pg_get_serial_sequence(?, 'id')", [table]).fetchone()[0]
    if sequence is None:
        return
    top = target.conn.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()[0]
    used = max(int(top), highest_ever)
    target.conn.execute("SELECT setval(?, ?, ?)", [sequence, max(used, 1), used > 0])


def _verify(source: Database, target: Database, table: str) -> TableCopy:
    columns, key = _columns(source, table)
    n_src, sha_src = _digest(_rows(source, table, columns, key))
    n_dst, sha_dst = _digest(_rows(target, table, columns, key))
    return TableCopy(table, n_src, n_dst, sha_src, sha_dst)
