"""The send ledger: one row per subscriber per digest date, claimed before a message goes out
and marked after the server's answer, so a crashed or repeated run never sends twice.

The rules (when to retry, when an address bounces) live in `delivery/ledger.py`; this module
holds the SQL of each transition and the queries over the ledger.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from newsletter.models import Send, SendStatus, as_utc
from newsletter.store.dialect import in_chunks

if TYPE_CHECKING:
    from newsletter.store.database import Database

_FIELDS = (
    "id",
    "subscriber_id",
    "digest_date",
    "status",
    "attempts",
    "message_id",
    "paper_ids",
    "last_error",
    "claimed_at",
    "sent_at",
    "updated_at",
)
_COLUMNS = ", ".join(_FIELDS)
_JOINED_COLUMNS = ", ".join(f"s.{c}" for c in _FIELDS)


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _send(row: Sequence[Any]) -> Send:
    """A row selected as `_COLUMNS` (in that order) as a Send."""
    (
        send_id,
        subscriber_id,
        digest_date,
        status,
        attempts,
        message_id,
        paper_ids,
        last_error,
        claimed_at,
        sent_at,
        updated_at,
    ) = row
    return Send(
        id=send_id,
        subscriber_id=subscriber_id,
        digest_date=date.fromisoformat(digest_date),
        status=SendStatus(status),
        attempts=attempts or 0,
        message_id=message_id or "",
        paper_ids=tuple(json.loads(paper_ids)) if paper_ids else (),
        error=last_error or "",
        claimed_at=_when(claimed_at),
        sent_at=_when(sent_at),
        updated_at=_when(updated_at),
    )


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" * len(values))


def _for_subscribers(
    sql: str, params: list[object], ids: Sequence[int] | None
) -> Iterator[tuple[str, list[object]]]:
    """`sql` with its `params`: once for every subscriber when `ids` is None, else once per
    run of `ids` (`dialect.in_chunks`), restricted to them."""
    if ids is None:
        yield sql, params
        return
    for chunk in in_chunks(ids, others=len(params)):
        yield f"{sql} AND subscriber_id IN ({_marks(chunk)})", [*params, *chunk]


# A candidate first seen this long before the newest is looked up by its ID instead of
# widening the range of rows read for all of them.
_RECENT = timedelta(days=62)
# Clocks of the processes (and hosts) that fetch and send may differ this much.
_SKEW = timedelta(days=1)
# At most this many candidates are looked up by ID; past it every row since the oldest is read.
_MAX_LOOKUPS = 64


def _like(paper_id: str) -> str:
    """A LIKE pattern matching every `paper_ids` JSON list that quotes `paper_id`, and maybe
    a few more (the caller keeps only real matches): the ID's own `%` and `_` stay wildcards,
    and so does a JSON escape's backslash (an escape character to PostgreSQL's LIKE, a plain
    one to SQLite's), so the pattern needs no ESCAPE clause on either backend."""
    return "%" + json.dumps(paper_id).replace("\\", "_") + "%"


def _rows_naming(first_seen: Mapping[str, datetime | None]) -> tuple[str, list[object]]:
    """A WHERE fragment keeping the sent rows that may name one of the papers `first_seen`
    maps (each to when the store first held it): rows sent since the earliest of the recent
    ones was first seen, and older rows that quote one of the others (first seen long
    before the newest, or not known when)."""
    seen = {p: None if t is None else as_utc(t) for p, t in first_seen.items()}
    known = [t for t in seen.values() if t is not None]
    cut = max(known) - _RECENT if known else None
    recent = [t for t in known if cut is not None and t >= cut]
    others = sorted(p for p, t in seen.items() if t is None or (cut is not None and t < cut))

    def since(times: list[datetime]) -> str:
        return (min(times) - _SKEW).date().isoformat()

    if len(others) > _MAX_LOOKUPS:  # too many to look up: read every row they may be in
        if len(known) < len(seen):
            return "", []
        return " AND sent_at >= ?", [since(known)]
    if not others:
        return " AND sent_at >= ?", [since(recent)]
    where, params = "", []
    if len(known) == len(seen):  # no row sent before the oldest was seen names any
        where, params = " AND sent_at >= ?", [since(known)]
    lookups = " OR ".join(["paper_ids LIKE ?"] * len(others))
    if recent:
        where += f" AND (sent_at >= ? OR {lookups})"
        params.append(since(recent))
    else:
        where += f" AND ({lookups})"
    return where, [*params, *(_like(p) for p in others)]


class Sends:
    """The ledger's transitions (claim → sent / retry / failed, skipped, reopened) and queries."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._conn = database.conn

    def _select(self, where: str, params: Sequence[object]) -> list[Send]:
        rows = self._conn.execute(f"SELECT {_COLUMNS} FROM sends {where}", params).fetchall()
        return [_send(r) for r in rows]

    # ------------------------------------------------------------ transitions

    def claim(self, subscriber_id: int, digest_date: date, message_id: str, now: datetime) -> bool:
        """Claim (subscriber, date) before sending. False when it was already sent or failed.

        A row left `claimed` by a crashed run, or marked `retry`/`skipped`, is claimed again
        (keeping its Message-ID, so a receiving system can drop a duplicate).
        One statement, atomic on both backends: no write lock is taken, so workers sharing a
        PostgreSQL store claim their messages side by side.
        """
        day, at = digest_date.isoformat(), now.isoformat()
        rows = self._conn.execute(
            "INSERT INTO sends (subscriber_id, digest_date, status, attempts, message_id,"
            " claimed_at, updated_at) VALUES (?,?,?,?,?,?,?)"
            " ON CONFLICT (subscriber_id, digest_date) DO UPDATE SET status = excluded.status,"
            " claimed_at = excluded.claimed_at, updated_at = excluded.updated_at,"
            " message_id = COALESCE(sends.message_id, excluded.message_id)"
            " WHERE sends.status NOT IN (?, ?) RETURNING id",
            [
                *(subscriber_id, day, str(SendStatus.CLAIMED), 0, message_id, at, at),
                *(str(SendStatus.SENT), str(SendStatus.FAILED)),
            ],
        ).fetchall()  # read to the end: SQLite ends the statement (and its write) there
        return bool(rows)

    def claim_many(self, claims: Sequence[tuple[int, date, str]], now: datetime) -> list[bool]:
        """`claim` for several (subscriber, date, Message-ID) in one transaction: one commit
        for a batch of messages about to go out."""
        with self._database.transaction():
            return [self.claim(sid, day, message_id, now) for sid, day, message_id in claims]

    def _update(
        self, subscriber_id: int, digest_date: date, now: datetime, **values: str | int | None
    ) -> None:
        sets = ", ".join(f"{k} = ?" for k in values)
        self._conn.execute(
            f"UPDATE sends SET {sets}, updated_at = ? WHERE subscriber_id = ? AND digest_date = ?",
            [*values.values(), now.isoformat(), subscriber_id, digest_date.isoformat()],
        )

    def mark_sent(
        self,
        subscriber_id: int,
        digest_date: date,
        message_id: str,
        paper_ids: Sequence[str],
        attempts: int,
        now: datetime,
    ) -> None:
        """The server accepted the message: record what was sent; the failure streak ends.
        Two updates by key: their row locks suffice (no global write lock on PostgreSQL)."""
        with self._database.transaction(exclusive=False):
            self._update(
                subscriber_id,
                digest_date,
                now,
                status=str(SendStatus.SENT),
                message_id=message_id,
                paper_ids=json.dumps(list(paper_ids)),
                sent_at=now.isoformat(),
                last_error=None,
                attempts=attempts,
            )
            self._conn.execute(
                "UPDATE subscribers SET hard_failures = 0 WHERE id = ?", [subscriber_id]
            )

    def mark_retry(
        self, subscriber_id: int, digest_date: date, error: str, attempts: int, now: datetime
    ) -> None:
        """A temporary failure: the next run claims the row again."""
        self._update(
            subscriber_id,
            digest_date,
            now,
            status=str(SendStatus.RETRY),
            last_error=error,
            attempts=attempts,
        )

    def mark_failed(
        self,
        subscriber_id: int,
        digest_date: date,
        error: str,
        attempts: int,
        now: datetime,
        hard: bool = True,
    ) -> int:
        """Record a permanent failure; returns the subscriber's consecutive hard failures
        (this one among them when `hard`: the recipient's mailbox was refused)."""
        with self._database.transaction():
            self._update(
                subscriber_id,
                digest_date,
                now,
                status=str(SendStatus.FAILED),
                last_error=error,
                attempts=attempts,
            )
            if hard:
                self._conn.execute(
                    "UPDATE subscribers SET hard_failures = hard_failures + 1 WHERE id = ?",
                    [subscriber_id],
                )
            row = self._conn.execute(
                "SELECT hard_failures FROM subscribers WHERE id = ?", [subscriber_id]
            ).fetchone()
        return int(row[0]) if row else 0

    def mark_skipped(
        self, subscriber_id: int, digest_date: date, reason: str, now: datetime
    ) -> None:
        """Record that there was nothing to send (the row can be claimed again later)."""
        self._conn.execute(
            "INSERT INTO sends (subscriber_id, digest_date, status, last_error, updated_at)"
            " VALUES (?,?,?,?,?) ON CONFLICT (subscriber_id, digest_date) DO UPDATE SET"
            " status = excluded.status, last_error = excluded.last_error,"
            " updated_at = excluded.updated_at WHERE sends.status != 'sent'",
            [
                subscriber_id,
                digest_date.isoformat(),
                str(SendStatus.SKIPPED),
                reason,
                now.isoformat(),
            ],
        )

    def recipient_status(self, subscriber_id: int) -> str | None:
        """The subscriber's status now, or None when the row is gone: one primary-key read,
        taken just before each message goes out."""
        row = self._conn.execute(
            "SELECT status FROM subscribers WHERE id = ?", [subscriber_id]
        ).fetchone()
        return str(row[0]) if row else None

    def reopen(self, subscriber_id: int, digest_date: date, message_id: str, now: datetime) -> bool:
        """Make a sent (or failed) digest sendable again under a new Message-ID (`--resend`).

        Returns False when there is no ledger row for that subscriber and date.
        """
        cur = self._conn.execute(
            "UPDATE sends SET status = ?, message_id = ?, last_error = ?, updated_at = ?"
            " WHERE subscriber_id = ? AND digest_date = ?",
            [
                str(SendStatus.RETRY),
                message_id,
                "resend requested",
                now.isoformat(),
                subscriber_id,
                digest_date.isoformat(),
            ],
        )
        return cur.rowcount > 0

    # ------------------------------------------------------------ queries

    def get(self, subscriber_id: int, digest_date: date) -> Send | None:
        sends = self._select(
            "WHERE subscriber_id = ? AND digest_date = ?", [subscriber_id, digest_date.isoformat()]
        )
        return sends[0] if sends else None

    def on(self, digest_date: date) -> list[Send]:
        """Every ledger row of one digest date, by subscriber."""
        return self._select(
            "WHERE digest_date = ? ORDER BY subscriber_id", [digest_date.isoformat()]
        )

    def with_status(self, *statuses: SendStatus) -> list[Send]:
        return self._select(
            f"WHERE status IN ({_marks(statuses)}) ORDER BY digest_date, subscriber_id",
            [str(s) for s in statuses],
        )

    def recently_sent(self, subscriber_id: int, limit: int = 10) -> list[Send]:
        """A subscriber's last `limit` sent digests, newest first."""
        return self._select(
            "WHERE subscriber_id = ? AND status = 'sent' ORDER BY digest_date DESC LIMIT ?",
            [subscriber_id, limit],
        )

    def with_email(
        self, statuses: Sequence[SendStatus], since: date, limit: int = 50
    ) -> tuple[list[tuple[Send, str]], int]:
        """Ledger rows (newest first, each with its address) on or after `since`, and their
        total."""
        where = f"s.status IN ({_marks(statuses)}) AND s.digest_date >= ?"
        params = [*(str(s) for s in statuses), since.isoformat()]
        total = int(
            self._conn.execute(f"SELECT count(*) FROM sends s WHERE {where}", params).fetchone()[0]
        )
        rows = self._conn.execute(
            f"SELECT {_JOINED_COLUMNS}, sub.email FROM sends s"
            f" JOIN subscribers sub ON sub.id = s.subscriber_id WHERE {where}"
            " ORDER BY s.digest_date DESC, s.subscriber_id LIMIT ?",
            [*params, limit],
        ).fetchall()
        return [(_send(r[:-1]), r[-1]) for r in rows], total

    def sent_paper_ids(
        self,
        ids: Sequence[int] | None = None,
        *,
        before: date | None = None,
        among: Mapping[str, datetime | None] | None = None,
    ) -> dict[int, set[str]]:
        """The papers each subscriber has already received (the no-repeat rule): all of them,
        or only those `among` a digest's candidates (each paper's ID mapped to when the store
        first held it, `Paper.first_seen`). A subscriber who received none is left out.

        With `before`, only digests dated strictly before it count: a digest for that date
        is rebuilt as it was sent, not without its own papers.

        `among` reads only the rows that can name one of them. The ledger gains a row per
        reader per day, and reading every reader's whole history each run cost seconds a
        thousand readers after a year. No digest holds a paper the store did not hold yet,
        so a row sent before a paper was first seen cannot name it (`_SKEW` of slack): rows
        sent since the recent candidates were first seen are read, through the (subscriber,
        sent_at) index. Candidates first seen long before the newest (a paper Hugging Face
        lists again months later), or not known when, are found by their quoted ID in the
        older rows, which the database scans without handing them over.
        """
        wanted = None if among is None else frozenset(among)
        if wanted is not None and not wanted:
            return {}
        sql = "SELECT subscriber_id, digest_date, paper_ids FROM sends WHERE status = 'sent'"
        params: list[object] = []
        if among is not None:
            # `before` is applied below: a bound on digest_date here would let SQLite read
            # through the (subscriber, digest_date) index instead, every row of the reader.
            where, params = _rows_naming(among)
            sql += where
        elif before is not None:
            sql += " AND digest_date < ?"
            params.append(before.isoformat())
        last = before.isoformat() if before is not None else None
        out: dict[int, set[str]] = {}
        for query, values in _for_subscribers(sql, params, ids):
            for sid, day, pids in self._conn.execute(query, values).fetchall():
                if last is not None and day >= last:
                    continue
                got = json.loads(pids or "[]")
                if wanted is not None:
                    got = [p for p in got if p in wanted]
                if got:
                    out.setdefault(sid, set()).update(got)
        return out

    def last_sent_dates(self, before: date, ids: Sequence[int] | None = None) -> dict[int, date]:
        """Each subscriber's latest digest date strictly before `before`; of `ids` only when
        given (a send run asks a chunk of subscribers at a time).

        Each is a walk back along the (subscriber, digest_date) index from `before` to the
        newest sent row, not a read of the subscriber's history, which grows by a row a day:
        grouping the rows by subscriber read all of them, 0.2–0.5 s a thousand readers with a
        year of digests, against 3–6 ms.
        """
        sql = (
            "SELECT s.id, (SELECT max(digest_date) FROM sends WHERE subscriber_id = s.id"
            " AND status = 'sent' AND digest_date < ?) FROM subscribers s"
        )
        day = before.isoformat()
        statements = (
            [(sql, [day])]
            if ids is None
            else [
                (f"{sql} WHERE s.id IN ({_marks(chunk)})", [day, *chunk])
                for chunk in in_chunks(ids, others=1)
            ]
        )
        out: dict[int, date] = {}
        for query, values in statements:
            for sid, latest in self._conn.execute(query, values).fetchall():
                if latest:
                    out[sid] = date.fromisoformat(latest)
        return out

    def keys(self, dates: Sequence[date], statuses: Sequence[SendStatus]) -> set[tuple[int, date]]:
        """(subscriber id, digest date) of the ledger rows on `dates` with one of `statuses`."""
        if not dates or not statuses:
            return set()
        rows = self._conn.execute(
            f"SELECT subscriber_id, digest_date FROM sends WHERE digest_date IN ({_marks(dates)})"
            f" AND status IN ({_marks(statuses)})",
            [*(d.isoformat() for d in dates), *(str(s) for s in statuses)],
        ).fetchall()
        return {(int(sid), date.fromisoformat(d)) for sid, d in rows}

    def counts_by_date(self, since: date) -> dict[date, dict[SendStatus, int]]:
        """{digest date: {status: count}} for digest dates on or after `since`, newest first."""
        out: dict[date, dict[SendStatus, int]] = {}
        for day, status, n in self._conn.execute(
            "SELECT digest_date, status, count(*) FROM sends WHERE digest_date >= ?"
            " GROUP BY digest_date, status ORDER BY digest_date DESC, status",
            [since.isoformat()],
        ).fetchall():
            out.setdefault(date.fromisoformat(day), {})[SendStatus(status)] = int(n)
        return out

    def sent_message_ids(self, digest_date: date) -> dict[int, str]:
        """Message-IDs of the digests already sent for a date, by subscriber."""
        rows = self._conn.execute(
            "SELECT subscriber_id, message_id FROM sends WHERE digest_date = ? AND status = 'sent'",
            [digest_date.isoformat()],
        ).fetchall()
        return {sid: mid for sid, mid in rows}
