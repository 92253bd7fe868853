"""Subscriber ids are never handed out twice, every row has its own nonce, and the migration
that brings both keeps every row, id, index and child row of an existing database file."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from newsletter.models import Interest, InterestKind, SubscriberStatus
from newsletter.store import Database, schema
from newsletter.store.dialect import SQLITE_DIALECT

T0 = datetime(2025, 4, 28, 5, 0, tzinfo=UTC)
OLD_COLUMNS = "id, email, name, status, timezone, delivery_hour, digest_size, created_at"


def test_a_deleted_subscribers_id_is_never_given_to_the_next_one(store: Database) -> None:
    first, _ = store.subscribers.add("first@example.org", T0, status=SubscriberStatus.ACTIVE)
    gone, _ = store.subscribers.add("gone@example.org", T0)  # pending, the highest id
    assert store.subscribers.expire_pending(T0 + timedelta(days=8)) == 1
    assert store.subscribers.get(gone.id) is None
    later, _ = store.subscribers.add("later@example.org", T0)
    assert later.id > gone.id > first.id
    nonces = {first.nonce, gone.nonce, later.nonce}
    assert len(nonces) == 3 and all(re.fullmatch(r"[0-9a-f]{16}", n) for n in nonces)
    assert not later.legacy_links and not first.legacy_links


def _first_release_file(path: Path) -> None:
    """A database as the first release left it: migration 1 only, with real rows."""
    conn = sqlite3.connect(path, isolation_level=None)
    db = schema.Migrator(conn, SQLITE_DIALECT)
    schema.MIGRATIONS[0](db)
    db.execute("PRAGMA user_version = 1")
    db.execute("CREATE INDEX idx_subscribers_status ON subscribers (status)")  # an operator's
    at = T0.isoformat()
    for email, status in [
        ("ann@example.org", "active"),
        ("bob@example.org", "unsubscribed"),
        ("cy@example.org", "pending"),
    ]:
        db.execute(
            "INSERT INTO subscribers (email, status, created_at) VALUES (?, ?, ?)",
            [email, status, at],
        )
    db.execute("DELETE FROM subscribers WHERE email = 'cy@example.org'")  # id 3, expired
    for sid in (1, 2):
        db.execute(
            "INSERT INTO interests (subscriber_id, kind, value) VALUES (?, 'keyword', 'kv')",
            [sid],
        )
        db.execute(
            "INSERT INTO feedback (subscriber_id, paper_id, vote) VALUES (?, '2401.00001', 1)",
            [sid],
        )
        db.execute(
            "INSERT INTO sends (subscriber_id, digest_date, status)"
            " VALUES (?, '2025-04-27', 'sent')",
            [sid],
        )
    conn.close()


def _snapshot(path: Path) -> dict[str, object]:
    conn = sqlite3.connect(path)
    try:
        return {
            "subscribers": conn.execute(
                f"SELECT {OLD_COLUMNS} FROM subscribers ORDER BY id"
            ).fetchall(),
            "children": [
                conn.execute(f"SELECT * FROM {t} ORDER BY id").fetchall()
                for t in ("interests", "feedback", "sends")
            ],
            "indexes": sorted(
                r[0]
                for r in conn.execute(
                    "SELECT name FROM sqlite_master"
                    " WHERE type = 'index' AND tbl_name = 'subscribers'"
                )
            ),
        }
    finally:
        conn.close()


def test_the_migration_keeps_every_row_id_index_and_child_row(tmp_path: Path) -> None:
    path = tmp_path / "released.db"
    _first_release_file(path)
    before = _snapshot(path)
    assert len(before["subscribers"]) == 2 and all(before["children"])  # type: ignore[arg-type]
    with Database(path) as store:
        assert store.schema_version == len(schema.MIGRATIONS)
        assert _snapshot(path) == before
        table_sql = store.conn.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'subscribers'"
        ).fetchone()[0]
        assert "AUTOINCREMENT" in table_sql and "COLLATE NOCASE" in table_sql
        assert store.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert store.conn.execute("PRAGMA foreign_key_check").fetchall() == []
        old = store.subscribers.list()
        assert all(s.legacy_links and re.fullmatch(r"[0-9a-f]{16}", s.nonce) for s in old)
        assert len({s.nonce for s in old}) == 2
        # A row added after the migration takes only links that carry its nonce.
        new, _ = store.subscribers.add("dee@example.org", T0)
        assert new.id == 3 and not new.legacy_links  # the id of the row deleted before
        assert store.subscribers.add("ANN@example.org", T0)[1] is False  # still unique, nocase
        # Foreign keys are on again: removing a subscriber still removes what was theirs.
        store.subscribers.set_interests(new.id, [Interest(InterestKind.KEYWORD, "x")], T0)
        store.subscribers.expire_pending(T0 + timedelta(days=8))
        assert store.subscribers.interests_for(new.id) == []
        assert store.subscribers.interests_for(1) != []
    with Database(path) as again:  # a second open changes nothing
        assert [s.nonce for s in again.subscribers.list()] == [s.nonce for s in old]
