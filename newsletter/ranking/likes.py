"""Liked papers sharpen a subscriber's interests rather than dilute them.

A paper's similarity to the liked papers lifts it in proportion to how well it already
matches the subscriber's interests (relative to their best match today, raised to a power),
so the likes reorder the papers that are on topic instead of pulling in look-alikes that
are off it. A subscriber with likes and no interests gets the similarity itself.
"""

from __future__ import annotations

import numpy as np


def add_likes(
    rel: np.ndarray,
    sims: np.ndarray,
    owner: np.ndarray,
    weight: float,
    pool: str,
    gate: float,
) -> None:
    """Add the liked papers' lift to `rel` (subscribers x papers) in place.

    `sims[r]` is liked paper r's similarity to every paper and `owner[r]` its subscriber
    (rows sorted by owner); `pool` is "max" (the closest liked paper) or "mean".
    """
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    who = owner[starts]
    if pool == "mean":
        like = np.add.reduceat(sims, starts, axis=0) / np.diff(np.r_[starts, len(owner)])[:, None]
    else:
        like = np.maximum.reduceat(sims, starts, axis=0)
    sub = rel[who]
    top = sub.max(axis=1, keepdims=True)
    share = np.clip(np.divide(sub, top, out=np.zeros_like(sub), where=top > 0), 0, 1)
    share **= gate
    share[top[:, 0] <= 0] = 1.0
    rel[who] = sub + np.float32(weight) * like.astype(np.float32) * share
