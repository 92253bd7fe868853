"""Interest scores discounted for papers that cover only some of the interest's facets.

An interest with several facets (`facets.py`) is multiplied by a soft AND:
`(1 - weight) + weight * min over facets of min(1, facet score / saturation)`, so a paper
must cover the topic *and* the scope to keep its full score, while one that covers a facet
only partly is discounted rather than dropped. Every facet of a batch of interests is scored
in one sparse product and reduced with `reduceat`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

Scorer = Callable[[Sequence[str]], np.ndarray]  # texts -> rows of scores over the papers


def discount_partial(
    scores: np.ndarray,
    facets: Sequence[tuple[str, ...]],
    score: Scorer,
    *,
    weight: float,
    saturation: float,
) -> None:
    """Scale `scores` (one row per interest) in place by how well each paper covers the
    interest's weakest facet; interests without facets are left as they are."""
    texts: list[str] = []
    owner: list[int] = []
    for i, parts in enumerate(facets):
        texts += parts
        owner += [i] * len(parts)
    if weight <= 0 or not texts:
        return
    own = np.asarray(owner, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, own[1:] != own[:-1]])
    weakest = np.minimum.reduceat(score(texts), starts, axis=0)
    cover = np.clip(weakest / max(saturation, 1e-6), 0.0, 1.0).astype(np.float32)
    scores[own[starts]] *= np.float32(1 - weight) + np.float32(weight) * cover
