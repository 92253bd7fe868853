"""The day's send work shared by several workers (the `send_queue` and `send_workers` tables).

Every worker queues the subscribers it finds due (a row per subscriber per digest date; queuing
twice changes nothing), then repeatedly takes a batch: rows still queued, or claimed by a
worker whose lease has run out. On PostgreSQL `FOR UPDATE SKIP LOCKED` lets workers take
different batches at the same moment; on SQLite the write lock takes turns. A taken row is
the worker's until its lease ends; `done` releases it for good. A worker that dies keeps its
rows only until the lease ends; the next worker to look takes them again, and the ledger's
`claimed` row gives the resend its original Message-ID.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from newsletter.store.database import Database

QUEUED, CLAIMED, DONE = "queued", "claimed", "done"


class WorkerRow(NamedTuple):
    """One send worker as `newsletter status` shows it."""

    worker: str
    host: str
    pid: int
    digest_date: str
    heartbeat_at: float
    finished_at: str
    sent: int
    holding: int  # rows it has claimed and not finished
    lease_until: float | None  # when the earliest of those leases ends


class QueueCounts(NamedTuple):
    queued: int
    claimed: int
    expired: int  # claimed, but the lease has run out: the next worker takes them
    done: int


def worker_name() -> str:
    """This process as a worker: host and pid (unique among live workers)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" * len(values))


class Claims:
    """Queue, take (with a lease), renew and finish the rows of one digest date."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._conn = database.conn

    def enqueue(self, digest_date: date, subscriber_ids: Sequence[int], now: datetime) -> None:
        """Queue these subscribers for the date. A row a worker holds keeps its claim; a done
        row is queued again (its digest was left to retry: the caller found it still due)."""
        day, at = digest_date.isoformat(), now.isoformat()
        self._conn.executemany(
            "INSERT INTO send_queue (digest_date, subscriber_id, state, queued_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (digest_date, subscriber_id) DO UPDATE SET"
            " state = excluded.state, queued_at = excluded.queued_at, worker = NULL,"
            " lease_until = NULL WHERE send_queue.state = 'done'",
            [(day, sid, QUEUED, at) for sid in subscriber_ids],
        )

    def take(
        self,
        digest_date: date,
        worker: str,
        limit: int,
        lease_seconds: float,
        now: float,
        at: datetime,
    ) -> list[int]:
        """Claim up to `limit` rows for `worker` until `now + lease_seconds` (epoch seconds):
        queued ones first, then those whose lease ran out. Returns their subscriber ids."""
        day = digest_date.isoformat()
        skip_locked = " FOR UPDATE SKIP LOCKED" if self._database.postgres else ""
        with self._database.transaction(exclusive=False):
            rows = self._conn.execute(
                "SELECT subscriber_id FROM send_queue WHERE digest_date = ? AND"
                " (state = ? OR (state = ? AND lease_until < ?))"
                f" ORDER BY state DESC, subscriber_id LIMIT ?{skip_locked}",
                [day, QUEUED, CLAIMED, now, limit],
            ).fetchall()
            ids = [int(r[0]) for r in rows]
            if ids:
                self._conn.execute(
                    "UPDATE send_queue SET state = ?, worker = ?, lease_until = ?,"
                    " claimed_at = ?, takes = takes + 1"
                    f" WHERE digest_date = ? AND subscriber_id IN ({_marks(ids)})",
                    [CLAIMED, worker, now + lease_seconds, at.isoformat(), day, *ids],
                )
        return ids

    def renew(self, worker: str, lease_seconds: float, now: float) -> int:
        """Extend the leases `worker` holds; returns how many."""
        cur = self._conn.execute(
            "UPDATE send_queue SET lease_until = ? WHERE worker = ? AND state = ?",
            [now + lease_seconds, worker, CLAIMED],
        )
        return cur.rowcount

    def done(
        self, digest_date: date, worker: str, subscriber_ids: Sequence[int], at: datetime
    ) -> None:
        """`worker` has finished these rows (sent, skipped, failed or left to retry)."""
        if not subscriber_ids:
            return
        self._conn.execute(
            "UPDATE send_queue SET state = ?, done_at = ? WHERE digest_date = ? AND worker = ?"
            f" AND state = ? AND subscriber_id IN ({_marks(subscriber_ids)})",
            [DONE, at.isoformat(), digest_date.isoformat(), worker, CLAIMED, *subscriber_ids],
        )

    def next_expiry(self, digest_date: date) -> float | None:
        """When the earliest lease still held for the date ends (None: no row is claimed)."""
        row = self._conn.execute(
            "SELECT min(lease_until) FROM send_queue WHERE digest_date = ? AND state = ?",
            [digest_date.isoformat(), CLAIMED],
        ).fetchone()
        return float(row[0]) if row and row[0] is not None else None

    def counts(self, digest_date: date, now: float) -> QueueCounts:
        row = self._conn.execute(
            "SELECT coalesce(sum(CASE WHEN state = ? THEN 1 ELSE 0 END), 0),"
            " coalesce(sum(CASE WHEN state = ? AND lease_until >= ? THEN 1 ELSE 0 END), 0),"
            " coalesce(sum(CASE WHEN state = ? AND lease_until < ? THEN 1 ELSE 0 END), 0),"
            " coalesce(sum(CASE WHEN state = ? THEN 1 ELSE 0 END), 0)"
            " FROM send_queue WHERE digest_date = ?",
            [QUEUED, CLAIMED, now, CLAIMED, now, DONE, digest_date.isoformat()],
        ).fetchone()
        return QueueCounts(*(int(v) for v in row))

    def latest_date(self) -> date | None:
        row = self._conn.execute("SELECT max(digest_date) FROM send_queue").fetchone()
        return date.fromisoformat(row[0]) if row and row[0] else None

    # ------------------------------------------------------------ workers

    def heartbeat(
        self, worker: str, digest_date: date, now: float, at: datetime, sent: int = 0
    ) -> None:
        """Record that `worker` is alive (and how many it has sent so far)."""
        host, _, pid = worker.rpartition(":")
        self._conn.execute(
            "INSERT INTO send_workers (worker, host, pid, digest_date, started_at, heartbeat_at,"
            " sent) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (worker) DO UPDATE SET"
            " digest_date = excluded.digest_date, heartbeat_at = excluded.heartbeat_at,"
            " sent = excluded.sent, finished_at = NULL",
            [worker, host, int(pid or 0), digest_date.isoformat(), at.isoformat(), now, sent],
        )

    def finished(self, worker: str, at: datetime, sent: int) -> None:
        self._conn.execute(
            "UPDATE send_workers SET finished_at = ?, sent = ? WHERE worker = ?",
            [at.isoformat(), sent, worker],
        )

    def workers(self, limit: int = 20) -> list[WorkerRow]:
        """The most recently seen workers, each with the rows it holds and its earliest lease."""
        rows = self._conn.execute(
            "SELECT w.worker, w.host, w.pid, w.digest_date, w.heartbeat_at, w.finished_at,"
            " w.sent, (SELECT count(*) FROM send_queue q WHERE q.worker = w.worker"
            " AND q.state = 'claimed'), (SELECT min(q.lease_until) FROM send_queue q"
            " WHERE q.worker = w.worker AND q.state = 'claimed')"
            " FROM send_workers w ORDER BY w.heartbeat_at DESC LIMIT ?",
            [limit],
        ).fetchall()
        return [
            WorkerRow(
                w,
                h,
                int(p),
                d or "",
                float(b),
                f or "",
                int(s),
                int(n),
                None if lease is None else float(lease),
            )
            for w, h, p, d, b, f, s, n, lease in rows
        ]
