"""Rank one day's papers for many subscribers at once: relevance × trending, fresh, no repeats.

The one ranking entry point used by the digest, the web preview and `newsletter eval`:
`rank(papers, profiles, today=..., options=...) -> list[Ranking]`. Scoring is in
`scoring.py`; here the best papers are chosen with maximal marginal relevance (so the picks
are not near-duplicates), a "trending today" section is added and every pick is explained.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date

import numpy as np

from newsletter.models import Paper
from newsletter.ranking.explain import Explainer, Ranking
from newsletter.ranking.likes import LikeRule
from newsletter.ranking.profile import Profile
from newsletter.ranking.scoring import Day, RankOptions, prepare_day, score_batch
from newsletter.ranking.semantic import Encoder
from newsletter.ranking.textindex import IndexSettings
from newsletter.ranking.traction import Rise

__all__ = ["RANKERS", "RankOptions", "Ranking", "rank", "ranker_options"]

YIELD_EVERY = 8  # subscribers explained between two chances for the scoring thread to run
CHUNK = 2048  # subscribers scored together; bounds memory at ~CHUNK x papers floats


_BASE = RankOptions()
# The rule before likes sharpened: the closest like's similarity added, gated by the match.
LIKES_ADD = LikeRule(mode="add", pool="max", gate=2.0)
RANKERS: dict[str, RankOptions] = {
    "default": _BASE,
    "bm25": replace(
        _BASE,
        index=IndexSettings(stem=False, fields=False, bigram_weight=0.0, k1=1.2, b=0.75),
        prf_docs=0,
        mmr_lambda=1.0,
    ),
    "no-stem": replace(_BASE, index=replace(_BASE.index, stem=False)),
    "no-title": replace(_BASE, index=replace(_BASE.index, fields=False)),
    "no-bigrams": replace(_BASE, index=replace(_BASE.index, bigram_weight=0.0)),
    "no-prf": replace(_BASE, prf_docs=0),
    "no-mmr": replace(_BASE, mmr_lambda=1.0),
    "no-facets": replace(_BASE, facet_weight=0.0),
    "no-acronyms": replace(_BASE, acronyms=False),
    "likes-add": replace(_BASE, likes=LIKES_ADD),
    "likes-ungated": replace(_BASE, likes=replace(LIKES_ADD, gate=0.0)),
}


def ranker_options(
    name: str, *, category_mode: str = "boost", trending_weight: float = 0.25
) -> RankOptions:
    """The named ranker with the operator's category mode and trending weight."""
    if name not in RANKERS:
        raise KeyError(name)
    return replace(RANKERS[name], category_mode=category_mode, trending_weight=trending_weight)


def redundancy(sim: np.ndarray, floor: float) -> np.ndarray:
    """Paper-to-paper similarity as MMR counts it: 0 below `floor`, rescaled to 0..1 above."""
    return (np.maximum(sim - floor, 0) / (1 - floor)).astype(np.float32)


@functools.lru_cache(maxsize=4)
def _tie_breakers(d: int) -> np.ndarray:
    """Distinct values far below any score, in shuffled order, for the papers not allowed.

    `argpartition` slows down badly on rows full of equal values (-inf); giving every excluded
    paper its own value keeps it fast and cannot admit one above an allowed paper.
    """
    perm = np.random.default_rng(0).permutation(d).astype(np.float32)
    return (-1e30 * (1 + perm / max(d, 1))).astype(np.float32)


def select(final: np.ndarray, pair_sim: np.ndarray, k: int, lam: float) -> np.ndarray:
    """Up to k paper indices per row by maximal marginal relevance (-1 pads short rows).

    `pair_sim` is `redundancy(sim, floor)`: how much a chosen paper penalises another.
    """
    n, d = final.shape
    k = min(k, d)
    c = min(d, max(3 * k, k))
    if c < d:
        # fmax: the tie breaker where `final` is -inf (or NaN), in one pass over the batch.
        key = np.fmax(final, _tie_breakers(d)[None, :])
        cand = np.argpartition(key, d - c, axis=1)[:, d - c :]
    else:
        cand = np.tile(np.arange(d), (n, 1))
    cs = np.take_along_axis(final, cand, axis=1)
    order = np.argsort(-cs, axis=1, kind="stable")
    cand, cs = np.take_along_axis(cand, order, axis=1), np.take_along_axis(cs, order, axis=1)
    valid = np.isfinite(cs)
    top = np.where(valid[:, :1], cs[:, :1], 1.0)
    rel = np.where(valid, cs / np.where(top > 0, top, 1.0), 0.0).astype(np.float32)
    chosen = np.full((n, k), -1, dtype=np.int64)
    if lam >= 1.0:
        chosen[:, : min(k, c)] = np.where(valid[:, :k], cand[:, :k], -1)
        return chosen
    maxsim = np.zeros((n, c), dtype=np.float32)
    rows = np.arange(n)
    flat_sim = pair_sim.ravel()  # gathering from the flat array is ~4x faster than [doc, cand]
    lam_rel = np.float32(lam) * rel
    penalty = np.float32(1 - lam)
    for step in range(k):
        mmr = np.where(valid, lam_rel - penalty * maxsim, -np.inf)
        j = np.argmax(mmr, axis=1)
        ok = np.isfinite(mmr[rows, j])
        if not ok.any():
            break
        doc = cand[rows, j]
        chosen[ok, step] = doc[ok]
        valid[rows[ok], j[ok]] = False
        np.maximum(maxsim, np.take(flat_sim, doc[:, None] * d + cand), out=maxsim)
    return chosen


def _trending_section(
    allowed: np.ndarray, chosen: np.ndarray, trend: np.ndarray, size: int
) -> np.ndarray:
    """Each row's top `size` trending papers that are allowed and not already picked.

    `allowed` ignores relevance (the section is what everyone talks about) but keeps the
    hard rules: fresh, not received, no negative keyword, the category filter.
    """
    if size <= 0:
        return np.full((allowed.shape[0], 0), -1, dtype=np.int64)
    order = np.argsort(-trend, kind="stable")
    order = order[trend[order] > 0][: size + chosen.shape[1]]
    ok = allowed[:, order]
    ok &= ~(order[None, None, :] == chosen[:, :, None]).any(axis=1)
    place = np.cumsum(ok, axis=1)
    ok &= place <= size
    out = np.full((allowed.shape[0], size), -1, dtype=np.int64)
    rows, cols = np.nonzero(ok)
    out[rows, place[rows, cols] - 1] = order[cols]
    return out


@dataclass
class _Batch:
    profiles: Sequence[Profile]
    chosen: np.ndarray  # paper indices (-1: none)
    scores: np.ndarray  # their final scores
    trending: np.ndarray
    counts: dict[str, np.ndarray]


def _rank_batch(
    day: Day,
    profiles: Sequence[Profile],
    options: RankOptions,
    encoder: Encoder | None,
    trending_size: int,
    pair_sim: np.ndarray,
) -> _Batch:
    final, _, counts = score_batch(day, profiles, options, encoder)
    k = max(1, *(p.size for p in profiles))
    chosen = select(final, pair_sim, k, options.mmr_lambda)
    scores = np.take_along_axis(final, np.maximum(chosen, 0), axis=1)
    trending = _trending_section(counts.pop("allowed"), chosen, day.trend, trending_size)
    return _Batch(profiles, chosen, scores, trending, counts)


def rank(
    papers: Sequence[Paper],
    profiles: Sequence[Profile],
    *,
    today: date | None = None,
    options: RankOptions = _BASE,
    examples: Mapping[str, Paper] = {},
    trending_size: int = 0,
    encoder: Encoder | None = None,
    rising: Mapping[str, Rise] = {},
) -> list[Ranking]:
    """Rank `papers` for every profile; `examples` holds liked/disliked papers by id, `rising`
    the papers that gained traction after their first day (`traction.find_rising`).

    Subscribers are scored in batches; while the reasons of one batch are written (Python),
    the next batch is scored in a helper thread (numpy and scipy release the GIL; the
    explaining loop hands the GIL over every few subscribers while the scorer is still busy,
    so it is not starved).
    """
    if not profiles:
        return []
    if not papers:
        return [Ranking(empty_reason=Explainer.no_papers(p)) for p in profiles]
    day = prepare_day(papers, today, options, examples, encoder, rising)
    explainer = Explainer(day, examples)
    batches = [profiles[s : s + CHUNK] for s in range(0, len(profiles), CHUNK)]
    pair_sim = redundancy(day.sim, options.mmr_floor) if options.mmr_lambda < 1 else day.sim
    job = functools.partial(
        _rank_batch,
        day,
        options=options,
        encoder=encoder,
        trending_size=trending_size,
        pair_sim=pair_sim,
    )
    out: list[Ranking] = []
    with _gc_paused(), ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(job, batches[0])
        for j in range(len(batches)):
            batch = pending.result()
            scoring: Future[_Batch] | None = None
            if j + 1 < len(batches):
                pending = scoring = pool.submit(job, batches[j + 1])
            out += _explain_batch(explainer, batch, scoring)
    return out


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a day is ranked.

    Ranking creates millions of small acyclic objects (picks, reasons, cache keys); each
    full collection would walk all of them again, which more than doubled the time for
    100,000 subscribers. Reference counting still frees them; collection resumes after.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _explain_batch(
    explainer: Explainer, batch: _Batch, scoring: Future[_Batch] | None = None
) -> list[Ranking]:
    """The batch's Rankings; while `scoring` (the next batch) runs, the GIL is handed to it
    every few subscribers. Once it is done the loop stops yielding: each `time.sleep(0)` is
    a system call (~0.15 ms; 12,500 of them for 100,000 subscribers when they were made
    unconditionally)."""
    out = []
    chosen, scores = batch.chosen.tolist(), batch.scores.tolist()
    trending = batch.trending.tolist()
    fresh, unsent = batch.counts["fresh"].tolist(), batch.counts["unsent"].tolist()
    for i, p in enumerate(batch.profiles):
        if scoring is not None and i % YIELD_EVERY == 0:
            if scoring.done():
                scoring = None
            else:
                time.sleep(0)  # hand the GIL over: the scorer's numpy calls need it between ops
        picks = [(d, s) for d, s in zip(chosen[i][: p.size], scores[i], strict=False) if d >= 0]
        out.append(
            explainer.ranking(p, picks, [x for x in trending[i] if x >= 0], fresh[i], unsent[i])
        )
    return out
