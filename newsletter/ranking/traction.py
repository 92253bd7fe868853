"""Papers that gain traction later: few upvotes on their first day, many now.

A reader's candidates are the papers dated after their last digest, so a paper that was
quiet on its first day and took off afterwards would never reach them. Such a paper is
*rising* on a day when, in its upvote history (one count per paper per day, recorded by the
Hugging Face fetch):
- the latest count, observed today or yesterday, is at least the threshold,
- its first recorded count was below it, on an earlier day,
so it crossed the threshold after its first day. A rising paper joins every reader's
candidates again (unless they received it; the other rules still apply) and its reason says
so: "▲ 120, up from 8 yesterday".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

DEFAULT_THRESHOLD = 50
STALE_AFTER_DAYS = 1  # a latest count older than this (days before the digest) is not news


@dataclass(frozen=True)
class Rise:
    """A paper's latest upvote count and the count observed on the day before that."""

    upvotes: int
    before: int
    before_day: date

    def figure(self, today: date) -> str:
        """'▲ 120, up from 8 yesterday' (or 'on Nov 22' when that was not yesterday)."""
        when = (
            "yesterday"
            if self.before_day == today - timedelta(days=1)
            else f"on {self.before_day:%b} {self.before_day.day}"
        )
        return f"▲ {self.upvotes:,}, up from {self.before:,} {when}"


def find_rising(
    history: Mapping[str, Sequence[tuple[date, int]]], today: date, threshold: int
) -> dict[str, Rise]:
    """The papers rising on `today`, by ID; `history` holds each paper's (day, upvotes)
    observations in any order (later days than `today` are ignored). Threshold 0: none."""
    if threshold <= 0:
        return {}
    out: dict[str, Rise] = {}
    for pid, rows in history.items():
        seen = sorted((d, n) for d, n in rows if d <= today)
        if len(seen) < 2:
            continue
        (first_day, first), (last_day, last) = seen[0], seen[-1]
        if last < threshold or first >= threshold or last_day <= first_day:
            continue
        if (today - last_day).days > STALE_AFTER_DAYS:
            continue
        before_day, before = next((d, n) for d, n in reversed(seen) if d < last_day)
        out[pid] = Rise(last, before, before_day)
    return out
