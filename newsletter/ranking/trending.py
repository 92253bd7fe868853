"""What the community is excited about: HF upvotes, comments and GitHub stars, decayed by age.

Scores are in [0, 1] (the day's most-discussed paper is 1). A paper without a Hugging Face
record scores 0: it is not boosted, but nothing excludes it either.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import numpy as np

from newsletter.models import Paper

HALF_LIFE_DAYS = 2.0  # yesterday's buzz counts ~70%, last week's ~9%
COMMENT_WEIGHT = 0.5
STAR_WEIGHT = 0.25


def paper_day(paper: Paper, today: date | None) -> date | None:
    """The latest day the paper was announced or listed on HF, not after `today`."""
    days = [d for d in (paper.announced, paper.hf_date) if d is not None]
    if today is not None:
        days = [d for d in days if d <= today] or days
    return max(days) if days else None


def trending_scores(papers: Sequence[Paper], today: date | None) -> np.ndarray:
    """Decayed, log-scaled community signal per paper, normalised to [0, 1]."""
    seen = [p.hf_date or p.announced for p in papers]
    return trending_from_counts(
        [p.upvotes for p in papers],
        [p.comments for p in papers],
        [p.github_stars for p in papers],
        [d.toordinal() if d is not None else -1 for d in seen],
        today.toordinal() if today is not None else -1,
    )


def trending_from_counts(
    upvotes: Sequence[int | None],
    comments: Sequence[int | None],
    stars: Sequence[int | None],
    seen: Sequence[int],
    today: int,
) -> np.ndarray:
    """`trending_scores` from the counts alone (None: unknown) and the ordinal day each paper
    was seen (-1: unknown), for listings that do not load whole papers."""

    def log_count(values: Sequence[int | None]) -> np.ndarray:
        raw = np.array([v or 0 for v in values], dtype=np.float64)
        return np.log1p(np.maximum(raw, 0))

    signal = (
        log_count(upvotes) + COMMENT_WEIGHT * log_count(comments) + STAR_WEIGHT * log_count(stars)
    )
    days = np.array(seen, dtype=np.int64)
    known = (days >= 0) & (today >= 0)
    age = np.where(known, np.maximum(today - days, 0), 0)
    raw = np.where(signal > 0, signal * 0.5 ** (age / HALF_LIFE_DAYS), 0.0).astype(np.float32)
    top = float(raw.max()) if len(raw) else 0.0
    out: np.ndarray = raw / top if top > 0 else raw
    return out


def figures(paper: Paper) -> list[str]:
    """The trending figures shown beside a pick: ▲ upvotes · 💬 comments · ★ stars."""
    out = []
    if paper.upvotes:
        out.append(f"▲ {paper.upvotes:,}")
    if paper.comments:
        out.append(f"💬 {paper.comments:,}")
    if paper.github_stars:
        out.append(f"★ {paper.github_stars:,}")
    return out
