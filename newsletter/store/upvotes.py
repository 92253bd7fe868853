"""The upvote_history table: a paper's Hugging Face upvotes, one count per day it was seen.

Written by the Hugging Face fetch (the day's last count wins), read by the ranker's late
traction rule (ranking/traction.py). Portable SQL: `ON CONFLICT ... DO UPDATE` is understood
by SQLite (3.24+) and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import TYPE_CHECKING

from newsletter.models import Paper
from newsletter.store.dialect import in_chunks

if TYPE_CHECKING:
    from newsletter.store.database import Database


class UpvoteHistory:
    def __init__(self, database: Database) -> None:
        self._database = database
        self._conn = database.conn

    def record(self, papers: Iterable[Paper], day: date) -> int:
        """Store each paper's upvotes as its count on `day` (papers without a count are
        skipped); returns how many counts were written."""
        rows = [(p.id, day.isoformat(), int(p.upvotes)) for p in papers if p.upvotes is not None]
        if rows:
            with self._database.transaction():
                self._conn.executemany(
                    "INSERT INTO upvote_history (paper_id, day, upvotes) VALUES (?, ?, ?)"
                    " ON CONFLICT (paper_id, day) DO UPDATE SET upvotes = excluded.upvotes",
                    rows,
                )
        return len(rows)

    def history(self, paper_ids: Sequence[str], until: date) -> dict[str, list[tuple[date, int]]]:
        """Each paper's (day, upvotes) on days up to `until`, oldest first."""
        out: dict[str, list[tuple[date, int]]] = {}
        for chunk in in_chunks(paper_ids, others=1):
            marks = ",".join("?" * len(chunk))
            for pid, day, upvotes in self._conn.execute(
                "SELECT paper_id, day, upvotes FROM upvote_history"
                f" WHERE paper_id IN ({marks}) AND day <= ? ORDER BY paper_id, day",
                [*chunk, until.isoformat()],
            ):
                out.setdefault(pid, []).append((date.fromisoformat(day), int(upvotes)))
        return out
