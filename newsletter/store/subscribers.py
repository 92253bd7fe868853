"""The subscribers table with what belongs to a subscriber: interests and 👍/👎 feedback.

The lifecycle rules (who may subscribe, when a status changes) live with the callers; this
module holds the SQL of each change and the queries.
"""

from __future__ import annotations

import builtins
import json
import secrets
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING

from newsletter.models import (
    Bounce,
    Feedback,
    Interest,
    InterestKind,
    SignupRequest,
    Subscriber,
    SubscriberStatus,
)
from newsletter.store.dialect import in_chunks

if TYPE_CHECKING:
    from newsletter.store.database import Database

# A value `update` may write into a subscriber's column.
Column = str | int | date | datetime | None

_COLUMNS = (
    "id, email, name, status, timezone, delivery_hour, digest_size, created_at, confirmed_at,"
    " nonce, legacy_links, trending_mix"
)
_UPDATABLE = frozenset(
    {
        *("name", "status", "timezone", "delivery_hour", "digest_size", "confirmed_at"),
        *("hard_failures", "trending_mix"),
    }
)
SubscriberRow = tuple[int, str, str, str, str, int, int, str | None, str | None, str, int, str]
# Sign-up requests kept per subscriber: each confirmation e-mail names one. Enough that a burst
# of sign-ups by someone else (the subscribe rate limit bounds it) rarely pushes out the owner's.
MAX_REQUESTS = 20


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _subscriber(row: SubscriberRow) -> Subscriber:
    sid, email, name, status, timezone, hour, size, created_at, confirmed_at, nonce, legacy, mix = (
        row
    )
    return Subscriber(
        id=sid,
        email=email,
        name=name,
        status=SubscriberStatus(status),
        timezone=timezone,
        delivery_hour=hour,
        digest_size=size,
        created_at=_when(created_at),
        confirmed_at=_when(confirmed_at),
        nonce=nonce,
        legacy_links=bool(legacy),
        trending_mix=mix,
    )


def _column(value: Column) -> str | int | None:
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, str):
        return str(value)  # a SubscriberStatus is stored as its plain value
    return value


def _for_subscribers(sql: str, ids: Sequence[int] | None) -> Iterator[tuple[str, list[int]]]:
    """`sql` restricted to `ids` (all subscribers when None): one statement per run of ids
    (`dialect.in_chunks`), each subscriber's rows all in one of them, ordered by row id."""
    if ids is None:
        yield sql + " ORDER BY id", []
        return
    for chunk in in_chunks(ids):
        yield sql + f" WHERE subscriber_id IN ({','.join('?' * len(chunk))}) ORDER BY id", [*chunk]


class Subscribers:
    """Subscribers (unique by address, case-insensitively), their interests and feedback."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._conn = database.conn

    def _select(self, where: str, params: Sequence[object] = ()) -> builtins.list[Subscriber]:
        rows = self._conn.execute(f"SELECT {_COLUMNS} FROM subscribers {where}", params)
        return [_subscriber(r) for r in rows.fetchall()]

    def add(
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
        """Add a subscriber; returns (subscriber, created). A known address is returned as is.

        A new row gets a random nonce that every link minted for it carries (see tokens.py)."""
        at = now.isoformat()
        confirmed = at if status == SubscriberStatus.ACTIVE else None
        with self._database.transaction():
            existing = self.get_by_email(email)
            if existing is not None:
                return existing, False
            cur = self._conn.execute(
                "INSERT INTO subscribers (email, name, status, timezone, delivery_hour,"
                " digest_size, created_at, confirmed_at, updated_at, nonce)"
                " VALUES (?,?,?,?,?,?,?,?,?,?) RETURNING id",
                [
                    *(email, name, str(status), timezone, delivery_hour, digest_size),
                    *(at, confirmed, at, secrets.token_hex(8)),
                ],
            )
            sub = self.get(int(cur.fetchall()[0][0]))
        assert sub is not None
        return sub, True

    def get(self, subscriber_id: int) -> Subscriber | None:
        found = self._select("WHERE id = ?", [subscriber_id])
        return found[0] if found else None

    def get_by_email(self, email: str) -> Subscriber | None:
        found = self._select(f"WHERE {self._database.dialect.nocase_equals('email')}", [email])
        return found[0] if found else None

    def list(self, status: SubscriberStatus | None = None) -> builtins.list[Subscriber]:
        """Every subscriber (with `status`, when given), oldest first."""
        if status is None:
            return self._select("ORDER BY id")
        return self._select("WHERE status = ? ORDER BY id", [str(status)])

    def counts(self) -> dict[SubscriberStatus, int]:
        """How many subscribers have each status (statuses nobody has are left out)."""
        rows = self._conn.execute("SELECT status, count(*) FROM subscribers GROUP BY status")
        return {SubscriberStatus(status): int(n) for status, n in rows.fetchall()}

    def update(self, subscriber_id: int, now: datetime, **changes: Column) -> None:
        """Change columns of one subscriber (status, timezone, delivery_hour, digest_size, name,
        confirmed_at, hard_failures, trending_mix)."""
        bad = set(changes) - _UPDATABLE
        if bad:
            raise ValueError(f"cannot update subscriber column(s): {sorted(bad)}")
        values = {k: _column(v) for k, v in changes.items()}
        values["updated_at"] = now.isoformat()
        sets = ", ".join(f"{k} = ?" for k in values)
        self._conn.execute(
            f"UPDATE subscribers SET {sets} WHERE id = ?", [*values.values(), subscriber_id]
        )

    def set_status(self, subscriber_id: int, status: SubscriberStatus, now: datetime) -> None:
        """Change the status; becoming active confirms (once), ends a failure streak and
        answers the sign-up requests waiting (so a later link can only name a newer one)."""
        changes: dict[str, Column] = {"status": status}
        with self._database.transaction():
            if status == SubscriberStatus.ACTIVE:
                sub = self.get(subscriber_id)
                if sub is not None and sub.confirmed_at is None:
                    changes["confirmed_at"] = now
                changes["hard_failures"] = 0
                self._conn.execute(
                    "DELETE FROM signup_requests WHERE subscriber_id = ?", [subscriber_id]
                )
            self.update(subscriber_id, now, **changes)

    def restart_pending(self, subscriber_id: int, now: datetime) -> None:
        """Restart the expiry clock of a pending sign-up that was submitted again."""
        self._conn.execute(
            "UPDATE subscribers SET created_at = ?, updated_at = ? WHERE id = ?",
            [now.isoformat(), now.isoformat(), subscriber_id],
        )

    def expire_pending(self, older_than: datetime) -> int:
        """Delete pending (never confirmed) subscriptions and sign-up requests created before
        `older_than`; returns how many subscriptions went."""
        with self._database.transaction():
            cur = self._conn.execute(
                "DELETE FROM subscribers WHERE status = 'pending' AND created_at < ?",
                [older_than.isoformat()],
            )
            self._conn.execute(
                "DELETE FROM signup_requests WHERE created_at < ?", [older_than.isoformat()]
            )
        return cur.rowcount

    def bounced(self, limit: int = 50) -> tuple[builtins.list[Bounce], int]:
        """Bounced addresses (most recent first) with the last permanent error, and their total."""
        sql = "SELECT count(*) FROM subscribers WHERE status = 'bounced'"
        total = int(self._conn.execute(sql).fetchone()[0])
        rows = self._conn.execute(
            "SELECT sub.id, sub.email, sub.hard_failures, sub.updated_at,"
            " (SELECT s.last_error FROM sends s"
            "  WHERE s.subscriber_id = sub.id AND s.status = 'failed'"
            "  ORDER BY s.digest_date DESC LIMIT 1)"
            " FROM subscribers sub WHERE sub.status = 'bounced'"
            " ORDER BY sub.updated_at DESC, sub.id LIMIT ?",
            [limit],
        ).fetchall()
        bounces = [
            Bounce(sid, email, hard_failures, _when(bounced_at), last_error or "")
            for sid, email, hard_failures, bounced_at, last_error in rows
        ]
        return bounces, total

    # ------------------------------------------------------------ sign-up requests

    def add_signup_request(
        self,
        subscriber_id: int,
        now: datetime,
        *,
        name: str = "",
        timezone: str | None = None,
        delivery_hour: int | None = None,
        digest_size: int | None = None,
        interests: Iterable[Interest] | None = None,
    ) -> SignupRequest:
        """Record a sign-up waiting for the owner's confirmation, with the settings that replace
        the stored ones when it is confirmed (`interests` None: keep the stored settings). Only
        the latest `MAX_REQUESTS` of one subscriber are kept."""
        wanted = None
        if interests is not None:
            wanted = json.dumps([[str(i.kind), i.value, i.weight] for i in interests])
        with self._database.transaction():
            request_id = self._conn.execute(
                "INSERT INTO signup_requests (subscriber_id, created_at, name, timezone,"
                " delivery_hour, digest_size, interests) VALUES (?,?,?,?,?,?,?) RETURNING id",
                [
                    subscriber_id,
                    now.isoformat(),
                    name,
                    timezone,
                    delivery_hour,
                    digest_size,
                    wanted,
                ],
            ).fetchall()[0][0]
            self._conn.execute(
                "DELETE FROM signup_requests WHERE subscriber_id = ? AND id NOT IN"
                " (SELECT id FROM signup_requests WHERE subscriber_id = ? ORDER BY id DESC"
                " LIMIT ?)",
                [subscriber_id, subscriber_id, MAX_REQUESTS],
            )
            request = self.signup_request(int(request_id))
        assert request is not None
        return request

    def signup_request(self, request_id: int) -> SignupRequest | None:
        row = self._conn.execute(
            "SELECT id, subscriber_id, created_at, name, timezone, delivery_hour, digest_size,"
            " interests FROM signup_requests WHERE id = ?",
            [request_id],
        ).fetchone()
        if row is None:
            return None
        rid, sid, created_at, name, timezone, hour, size, wanted = row
        interests = None
        if wanted is not None:
            interests = tuple(Interest(InterestKind(k), v, w) for k, v, w in json.loads(wanted))
        return SignupRequest(rid, sid, _when(created_at), name, timezone, hour, size, interests)

    # ------------------------------------------------------------ interests

    def set_interests(
        self, subscriber_id: int, interests: Iterable[Interest], now: datetime
    ) -> None:
        """Replace all interests of a subscriber (all or nothing: a failure keeps the old)."""
        with self._database.transaction():
            self._conn.execute("DELETE FROM interests WHERE subscriber_id = ?", [subscriber_id])
            self._insert_interests(subscriber_id, interests, now)

    def add_interests(
        self, subscriber_id: int, interests: Iterable[Interest], now: datetime
    ) -> None:
        """Add interests; one already there keeps its place and takes the new weight."""
        with self._database.transaction():
            self._insert_interests(subscriber_id, interests, now)

    def _insert_interests(
        self, subscriber_id: int, interests: Iterable[Interest], now: datetime
    ) -> None:
        at = now.isoformat()
        self._conn.executemany(
            "INSERT INTO interests (subscriber_id, kind, value, weight, created_at)"
            " VALUES (?,?,?,?,?) ON CONFLICT (subscriber_id, kind, value)"
            " DO UPDATE SET weight = excluded.weight",
            [  # one written again (preferences saved, likes kept) keeps when it was added
                (
                    subscriber_id,
                    str(i.kind),
                    i.value,
                    i.weight,
                    (i.created_at.isoformat() if i.created_at else at),
                )
                for i in interests
            ],
        )

    def interests_for(self, subscriber_id: int) -> builtins.list[Interest]:
        return self.interests_for_many([subscriber_id]).get(subscriber_id, [])

    def interests_for_many(
        self, ids: Sequence[int] | None = None
    ) -> dict[int, builtins.list[Interest]]:
        """Interests grouped by subscriber (all subscribers when ids is None)."""
        if ids is not None and not ids:
            return {}
        out: dict[int, builtins.list[Interest]] = {}
        for sql, params in _for_subscribers(
            "SELECT id, subscriber_id, kind, value, weight, created_at FROM interests", ids
        ):
            for iid, sid, kind, value, weight, at in self._conn.execute(sql, params):
                out.setdefault(sid, []).append(
                    Interest(InterestKind(kind), value, weight, sid, id=iid, created_at=_when(at))
                )
        return out

    # ------------------------------------------------------------ feedback

    def record_feedback(self, subscriber_id: int, paper_id: str, vote: int, now: datetime) -> bool:
        """Record a 👍 (+1) or 👎 (-1); a repeat click changes nothing. Returns True if changed."""
        if vote not in (1, -1):
            raise ValueError("vote must be +1 or -1")
        cur = self._conn.execute(
            "INSERT INTO feedback (subscriber_id, paper_id, vote, created_at) VALUES (?,?,?,?)"
            " ON CONFLICT (subscriber_id, paper_id) DO UPDATE SET vote = excluded.vote,"
            " created_at = excluded.created_at WHERE feedback.vote != excluded.vote",
            [subscriber_id, paper_id, vote, now.isoformat()],
        )
        return cur.rowcount > 0

    def remove_feedback(self, subscriber_id: int, paper_id: str) -> bool:
        """Take back a vote; False when there was none."""
        cur = self._conn.execute(
            "DELETE FROM feedback WHERE subscriber_id = ? AND paper_id = ?",
            [subscriber_id, paper_id],
        )
        return cur.rowcount > 0

    def feedback_for(self, subscriber_id: int) -> builtins.list[Feedback]:
        return self.feedback_for_many([subscriber_id]).get(subscriber_id, [])

    def feedback_for_many(
        self, ids: Sequence[int] | None = None
    ) -> dict[int, builtins.list[Feedback]]:
        """Votes grouped by subscriber, oldest first (all subscribers when ids is None)."""
        if ids is not None and not ids:
            return {}
        out: dict[int, builtins.list[Feedback]] = {}
        for sql, params in _for_subscribers(
            "SELECT subscriber_id, paper_id, vote, created_at FROM feedback", ids
        ):
            for sid, paper_id, vote, created_at in self._conn.execute(sql, params):
                out.setdefault(sid, []).append(Feedback(sid, paper_id, vote, _when(created_at)))
        return out
