"""Liked papers sharpen a subscriber's interests rather than dilute them.

Each paper's *affinity* to a subscriber's likes is its mean cosine similarity to the liked
papers (or its similarity to the closest one, `pool="max"`). The default ("sharpen") scales
the interest match by the affinity relative to the subscriber's own reference — the
affinity at the top `reference` share (5 %) of the day's papers other than the liked ones:

    relevance × (1 + weight × min(1, affinity / reference) ^ power)

so the likes reorder the papers that are on topic (a paper off the interests stays near 0
however close to a like it is) and the lift does not depend on how wordy the liked papers
are. "add" is the former rule: `weight × affinity × (relevance / best relevance) ^ gate` is
added. A subscriber with likes and no interest match gets the affinity itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LikeRule:
    """How liked papers change a subscriber's relevance (the `likes` field of RankOptions)."""

    mode: str = "sharpen"  # or "add"
    weight: float = 0.5
    pool: str = "mean"  # affinity: "mean" similarity to the likes, or "max" (the closest)
    power: float = 1.0  # "sharpen": how steeply the lift falls below the reference
    reference: float = 0.05  # "sharpen": the affinity of the day's top 5 % counts as full
    gate: float = 2.0  # "add": power of the interest match that scales the lift


def _affinity(sims: np.ndarray, starts: np.ndarray, counts: np.ndarray, pool: str) -> np.ndarray:
    if pool == "mean":
        out: np.ndarray = np.add.reduceat(sims, starts, axis=0) / counts[:, None]
    else:
        out = np.maximum.reduceat(sims, starts, axis=0)
    return out.astype(np.float32, copy=False)


def _reference(like: np.ndarray, rows: np.ndarray, group: np.ndarray, share: float) -> np.ndarray:
    """Each subscriber's affinity at the top `share` of the papers that are not their likes
    (`rows` below the number of papers are liked papers of the day, `group` their owner)."""
    d = like.shape[1]
    k = max(1, min(round(share * d), d))
    masked = like.copy()
    inside = rows < d
    masked[group[inside], rows[inside]] = 0
    kth: np.ndarray = -np.partition(-masked, k - 1, axis=1)[:, k - 1]
    return kth


def add_likes(
    rel: np.ndarray, sims: np.ndarray, rows: np.ndarray, owner: np.ndarray, rule: LikeRule
) -> None:
    """Apply the liked papers to `rel` (subscribers x papers) in place.

    `sims[r]` is liked row r's similarity to every paper, `rows[r]` its example row (a
    paper of the day when below the number of papers) and `owner[r]` its subscriber (rows
    sorted by owner).
    """
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    counts = np.diff(np.r_[starts, len(owner)])
    who = owner[starts]
    like = _affinity(sims, starts, counts, rule.pool)
    sub = rel[who]
    top = sub.max(axis=1, keepdims=True)
    matched = top[:, 0] > 0
    if rule.mode == "sharpen":
        group = np.repeat(np.arange(len(starts)), counts)
        ref = _reference(like, rows, group, rule.reference)
        lift = np.clip(like / np.maximum(ref, 1e-6)[:, None], 0, 1) ** np.float32(rule.power)
        out = sub * (1 + np.float32(rule.weight) * lift)
    else:
        share = np.clip(np.divide(sub, top, out=np.zeros_like(sub), where=top > 0), 0, 1)
        out = sub + np.float32(rule.weight) * like * share ** np.float32(rule.gate)
    out[~matched] = sub[~matched] + like[~matched]
    rel[who] = out
