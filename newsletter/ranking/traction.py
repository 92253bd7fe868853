"""Papers that gain traction later: few upvotes on their first day, many now.

A reader's candidates are the papers dated after their last digest, so a paper that was
quiet on its first day and took off afterwards would never reach them. Such a paper is
*rising* on a day when, in its upvote history (one count per paper per day, recorded by the
Hugging Face fetch):
- its first recorded count was below the threshold,
- it reached the threshold today or yesterday (a paper that crossed it last week is no news,
  however often it is counted again),
- and its latest count, observed today or yesterday, is at least the count it crossed with
  (a count that falls back is not a rise).
A rising paper joins every reader's candidates again (unless they received it; the other
rules still apply) and its reason gives its latest count and its last count below the
threshold: "▲ 120, up from 8 yesterday".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

DEFAULT_THRESHOLD = 50
STALE_AFTER_DAYS = 1  # a latest count older than this (days before the digest) is not news


@dataclass(frozen=True)
class Rise:
    """A paper's latest upvote count and its last count below the threshold (and that day)."""

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
        if len(seen) < 2 or seen[0][1] >= threshold:
            continue  # seen once, or already past the threshold on its first day
        last_day, last = seen[-1]
        if last < threshold or (today - last_day).days > STALE_AFTER_DAYS:
            continue
        crossed = next(i for i, (_, n) in enumerate(seen) if n >= threshold)
        cross_day, cross = seen[crossed]
        if (today - cross_day).days > STALE_AFTER_DAYS or last < cross:
            continue
        before_day, before = seen[crossed - 1]
        out[pid] = Rise(last, before, before_day)
    return out
