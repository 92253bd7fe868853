"""Rate limits kept in the database: sliding windows that every process sharing the file sees.

A limit is a key (what is counted: one client, one mailbox, one domain, everything), how many
events it allows, and the window they are counted over. `acquire` checks a set of limits and,
only when all of them allow it, counts the event against each, in one write transaction: a
refused attempt uses up nothing, and two processes cannot both take the last slot.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from newsletter.store.database import Database

# Hits older than this count for no limit, so every acquire may forget them.
MAX_WINDOW_SECONDS = 86_400.0


class Limit(NamedTuple):
    key: str
    allowed: int  # events per window
    window_seconds: float


class RateLimits:
    """Counted events per key (the `rate_hits` table), forgotten once out of every window."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._conn = database.conn

    def acquire(self, limits: Sequence[Limit], now: float) -> int:
        """Count one event against every limit and return 0, or, when any limit is used up,
        count nothing and return the seconds until all of them allow it again (at least 1)."""
        too_long = [limit.key for limit in limits if limit.window_seconds > MAX_WINDOW_SECONDS]
        if too_long:
            raise ValueError(f"rate limit windows are at most a day: {too_long}")
        with self._database.transaction():
            wait = max((self._wait(limit, now) for limit in limits), default=0.0)
            if wait > 0:
                return max(1, int(wait) + 1)
            self._conn.executemany(
                "INSERT INTO rate_hits (key, at) VALUES (?, ?)",
                [(limit.key, now) for limit in limits],
            )
            self._conn.execute("DELETE FROM rate_hits WHERE at <= ?", [now - MAX_WINDOW_SECONDS])
        return 0

    def _wait(self, limit: Limit, now: float) -> float:
        """Seconds until `limit` has room for one more event (0: it has room now)."""
        if limit.allowed < 1:
            return limit.window_seconds
        row = self._conn.execute(
            "SELECT at FROM rate_hits WHERE key = ? AND at > ? ORDER BY at DESC LIMIT 1 OFFSET ?",
            [limit.key, now - limit.window_seconds, limit.allowed - 1],
        ).fetchone()
        if row is None:  # fewer than `allowed` hits inside the window
            return 0.0
        # A slot frees up when the `allowed`-th newest hit leaves the window.
        return float(row[0]) + limit.window_seconds - now
