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
    raw = np.zeros(len(papers), dtype=np.float32)
    for i, p in enumerate(papers):
        signal = (
            np.log1p(max(p.upvotes or 0, 0))
            + COMMENT_WEIGHT * np.log1p(max(p.comments or 0, 0))
            + STAR_WEIGHT * np.log1p(max(p.github_stars or 0, 0))
        )
        if signal <= 0:
            continue
        seen = p.hf_date or p.announced
        age = max((today - seen).days, 0) if (today is not None and seen is not None) else 0
        raw[i] = signal * 0.5 ** (age / HALF_LIFE_DAYS)
    top = float(raw.max()) if len(raw) else 0.0
    return raw / top if top > 0 else raw


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
