"""The only module that knows SQL: schema, migrations, upserts and queries (sqlite-utils, WAL).

Papers are keyed by arXiv ID without version; an arXiv record and a Hugging Face record of
one paper merge into one row, and a later, shorter record never blanks a field.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from newsletter.models import (
    Feedback,
    Interest,
    InterestKind,
    Subscriber,
    SubscriberStatus,
)
from newsletter.store import schema
from newsletter.store.papers import Papers
from newsletter.store.runs import Runs
from newsletter.store.sends import Sends


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class Database:
    """A SQLite file holding papers, subscribers, interests, feedback, sends and fetch state."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False, isolation_level=None)
        self.db = sqlite_utils.Database(conn)
        self.db.execute("PRAGMA foreign_keys = ON")
        if str(path) != ":memory:":
            self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = NORMAL")
        self.migrate()
        self.papers = Papers(self)
        self.runs = Runs(self)
        self.sends = Sends(self)

    @property
    def conn(self) -> sqlite3.Connection:
        """The underlying connection (autocommit: each statement outside `transaction()`
        commits on its own)."""
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
        """Apply pending migrations, each in its own transaction."""
        current = self.schema_version
        for number, step in enumerate(schema.MIGRATIONS[current:], start=current + 1):
            with self.transaction():
                if self.schema_version >= number:  # another process migrated meanwhile
                    continue
                step(self.db)
                self.db.execute(f"PRAGMA user_version = {number}")

    def _rows(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        cur = self.db.execute(sql, params)
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    # ------------------------------------------------------------ subscribers

    @staticmethod
    def _subscriber(row: dict[str, Any]) -> Subscriber:
        return Subscriber(
            id=row["id"],
            email=row["email"],
            name=row["name"],
            status=SubscriberStatus(row["status"]),
            timezone=row["timezone"],
            delivery_hour=row["delivery_hour"],
            digest_size=row["digest_size"],
            created_at=datetime.fromisoformat(row["created_at"]) if row["created_at"] else None,
            confirmed_at=(
                datetime.fromisoformat(row["confirmed_at"]) if row["confirmed_at"] else None
            ),
        )

    def add_subscriber(
        self,
        email: str,
        now: datetime,
        *,
        name: str = "",
        status: SubscriberStatus = SubscriberStatus.PENDING,
        timezone: str = "UTC",
        delivery_hour: int = 7,
        digest_size: int = 10,
    ) -> tuple[Subscriber, bool]:
        """Add a subscriber; returns (subscriber, created). A known address is returned as is."""
        existing = self.get_subscriber_by_email(email)
        if existing is not None:
            return existing, False
        confirmed = now.isoformat() if status == SubscriberStatus.ACTIVE else None
        with self.db.conn:
            cur = self.db.execute(
                "INSERT INTO subscribers (email, name, status, timezone, delivery_hour,"
                " digest_size, created_at, confirmed_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
                [
                    email,
                    name,
                    str(status),
                    timezone,
                    delivery_hour,
                    digest_size,
                    now.isoformat(),
                    confirmed,
                    now.isoformat(),
                ],
            )
        sub = self.get_subscriber(int(cur.lastrowid or 0))
        assert sub is not None
        return sub, True

    def get_subscriber(self, subscriber_id: int) -> Subscriber | None:
        rows = self._rows("SELECT * FROM subscribers WHERE id = ?", [subscriber_id])
        return self._subscriber(rows[0]) if rows else None

    def get_subscriber_by_email(self, email: str) -> Subscriber | None:
        rows = self._rows("SELECT * FROM subscribers WHERE email = ? COLLATE NOCASE", [email])
        return self._subscriber(rows[0]) if rows else None

    def list_subscribers(self, status: SubscriberStatus | None = None) -> list[Subscriber]:
        if status is None:
            rows = self._rows("SELECT * FROM subscribers ORDER BY id")
        else:
            rows = self._rows(
                "SELECT * FROM subscribers WHERE status = ? ORDER BY id", [str(status)]
            )
        return [self._subscriber(r) for r in rows]

    def subscriber_counts(self) -> dict[str, int]:
        rows = self._rows("SELECT status, count(*) AS n FROM subscribers GROUP BY status")
        return {r["status"]: r["n"] for r in rows}

    def update_subscriber(self, subscriber_id: int, now: datetime, **changes: Any) -> None:
        """Change columns of one subscriber (status, timezone, delivery_hour, digest_size, name)."""
        allowed = {
            "name",
            "status",
            "timezone",
            "delivery_hour",
            "digest_size",
            "confirmed_at",
            "hard_failures",
        }
        bad = set(changes) - allowed
        if bad:
            raise ValueError(f"cannot update subscriber column(s): {sorted(bad)}")
        values = {
            k: (
                str(v)
                if isinstance(v, SubscriberStatus)
                else _iso(v)
                if isinstance(v, date | datetime)
                else v
            )
            for k, v in changes.items()
        }
        values["updated_at"] = now.isoformat()
        with self.db.conn:
            self.db["subscribers"].update(subscriber_id, values)

    def set_status(self, subscriber_id: int, status: SubscriberStatus, now: datetime) -> None:
        changes: dict[str, Any] = {"status": status}
        if status == SubscriberStatus.ACTIVE:
            sub = self.get_subscriber(subscriber_id)
            if sub is not None and sub.confirmed_at is None:
                changes["confirmed_at"] = now
            changes["hard_failures"] = 0
        self.update_subscriber(subscriber_id, now, **changes)

    def expire_pending(self, older_than: datetime) -> int:
        """Delete pending (never confirmed) subscriptions created before `older_than`."""
        with self.db.conn:
            cur = self.db.execute(
                "DELETE FROM subscribers WHERE status = 'pending' AND created_at < ?",
                [older_than.isoformat()],
            )
        return cur.rowcount

    # ------------------------------------------------------------ interests

    def set_interests(
        self, subscriber_id: int, interests: Iterable[Interest], now: datetime
    ) -> None:
        """Replace all interests of a subscriber."""
        with self.db.conn:
            self.db.execute("DELETE FROM interests WHERE subscriber_id = ?", [subscriber_id])
            self._insert_interests(subscriber_id, interests, now)

    def add_interests(
        self, subscriber_id: int, interests: Iterable[Interest], now: datetime
    ) -> None:
        with self.db.conn:
            self._insert_interests(subscriber_id, interests, now)

    def _insert_interests(
        self, subscriber_id: int, interests: Iterable[Interest], now: datetime
    ) -> None:
        for i in interests:
            self.db.execute(
                "INSERT INTO interests (subscriber_id, kind, value, weight, created_at)"
                " VALUES (?,?,?,?,?) ON CONFLICT (subscriber_id, kind, value)"
                " DO UPDATE SET weight = excluded.weight",
                [subscriber_id, str(i.kind), i.value, i.weight, now.isoformat()],
            )

    def interests_for(self, subscriber_id: int) -> list[Interest]:
        return self.interests_for_many([subscriber_id]).get(subscriber_id, [])

    def interests_for_many(self, ids: Sequence[int] | None = None) -> dict[int, list[Interest]]:
        """Interests grouped by subscriber (all subscribers when ids is None)."""
        sql = "SELECT * FROM interests"
        params: list[Any] = []
        if ids is not None:
            if not ids:
                return {}
            sql += f" WHERE subscriber_id IN ({','.join('?' * len(ids))})"
            params = list(ids)
        out: dict[int, list[Interest]] = {}
        for r in self._rows(sql + " ORDER BY id", params):
            out.setdefault(r["subscriber_id"], []).append(
                Interest(
                    kind=InterestKind(r["kind"]),
                    value=r["value"],
                    weight=r["weight"],
                    subscriber_id=r["subscriber_id"],
                    id=r["id"],
                )
            )
        return out

    # ------------------------------------------------------------ feedback

    def record_feedback(self, subscriber_id: int, paper_id: str, vote: int, now: datetime) -> bool:
        """Record a 👍 (+1) or 👎 (-1); a repeat click changes nothing. Returns True if changed."""
        if vote not in (1, -1):
            raise ValueError("vote must be +1 or -1")
        with self.db.conn:
            cur = self.db.execute(
                "INSERT INTO feedback (subscriber_id, paper_id, vote, created_at) VALUES (?,?,?,?)"
                " ON CONFLICT (subscriber_id, paper_id) DO UPDATE SET vote = excluded.vote,"
                " created_at = excluded.created_at WHERE feedback.vote != excluded.vote",
                [subscriber_id, paper_id, vote, now.isoformat()],
            )
        return cur.rowcount > 0

    def remove_feedback(self, subscriber_id: int, paper_id: str) -> bool:
        with self.db.conn:
            cur = self.db.execute(
                "DELETE FROM feedback WHERE subscriber_id = ? AND paper_id = ?",
                [subscriber_id, paper_id],
            )
        return cur.rowcount > 0

    def feedback_for_many(self, ids: Sequence[int] | None = None) -> dict[int, list[Feedback]]:
        sql, params = "SELECT * FROM feedback", []
        if ids is not None:
            if not ids:
                return {}
            sql += f" WHERE subscriber_id IN ({','.join('?' * len(ids))})"
            params = list(ids)
        out: dict[int, list[Feedback]] = {}
        for r in self._rows(sql + " ORDER BY id", params):
            out.setdefault(r["subscriber_id"], []).append(
                Feedback(
                    r["subscriber_id"],
                    r["paper_id"],
                    r["vote"],
                    datetime.fromisoformat(r["created_at"]) if r["created_at"] else None,
                )
            )
        return out

    def feedback_for(self, subscriber_id: int) -> list[Feedback]:
        return self.feedback_for_many([subscriber_id]).get(subscriber_id, [])

    def bounced_subscribers(self, limit: int = 50) -> tuple[list[dict[str, Any]], int]:
        """Bounced addresses (most recent first) with the last permanent error, and their total."""
        sql = "SELECT count(*) FROM subscribers WHERE status = 'bounced'"
        total = int(self.db.execute(sql).fetchone()[0])
        rows = self._rows(
            "SELECT sub.id AS subscriber_id, sub.email, sub.hard_failures,"
            " sub.updated_at AS bounced_at, (SELECT s.last_error FROM sends s"
            "  WHERE s.subscriber_id = sub.id AND s.status = 'failed'"
            "  ORDER BY s.digest_date DESC LIMIT 1) AS last_error"
            " FROM subscribers sub WHERE sub.status = 'bounced'"
            " ORDER BY sub.updated_at DESC, sub.id LIMIT ?",
            [limit],
        )
        return rows, total

    def restart_pending(self, subscriber_id: int, now: datetime) -> None:
        """Restart the expiry clock of a pending sign-up that was submitted again."""
        with self.db.conn:
            self.db.execute(
                "UPDATE subscribers SET created_at = ?, updated_at = ? WHERE id = ?",
                [now.isoformat(), now.isoformat(), subscriber_id],
            )
