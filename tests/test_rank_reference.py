"""The vectorised ranker against plain per-subscriber loops over the papers.

`score_batch` scores a whole batch with gathers, reductions over row owners and products
that touch only the rows that need them; `select` picks by maximal marginal relevance over
whole batches. Here a handful of subscribers with every kind of interest is scored both ways
on real abstracts (the eval corpus): each subscriber alone, paper by paper, in Python, from
the same building blocks (one interest's scores, the papers' similarities, the trending
scores), and the batch must agree on every allowed paper and every score.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from scipy import sparse

from newsletter.ranking.profile import (
    BACKGROUND_WEIGHT,
    RIDGE,
    Profile,
    build_matrices,
    train_models,
)
from newsletter.ranking.rank import RANKERS, redundancy, select
from newsletter.ranking.scoring import Day, RankOptions, prepare_day, score_batch, text_relevance
from tests.test_rank import DAY, corpus_paper

OPT = RANKERS["default"]
PAPERS = [
    corpus_paper(
        i,
        day=DAY - timedelta(days=i % 3),
        upvotes=(i * 13) % 70 or None,
        categories=(("cs.CL",) if i % 4 == 0 else ("cs.LG", "cs.CV")),
    )
    for i in range(240)
]
OUTSIDE = corpus_paper(500)  # a liked paper that is not one of the day's
IDS = [p.id for p in PAPERS]


def _profiles() -> list[Profile]:
    week = DAY - timedelta(days=7)
    return [
        Profile(key="one", queries=(("federated learning", 1.0),), since=week),
        Profile(
            key="three",
            queries=(("vision transformer", 1.0), ("stereo matching", 1.0), ("LLM", 1.0)),
            exclude=frozenset(IDS[:30:3]),
            since=DAY - timedelta(days=2),
        ),
        Profile(  # more than four interests and weights: the general reduction
            key="six",
            queries=(
                ("cost aggregation", 2.0),
                ("few-shot segmentation", 0.5),
                ("quantile regression", 1.0),
                ("diffusion models", 1.0),
                ("speech recognition", 0.5),
                ("graph neural networks", 1.0),
            ),
            since=week,
        ),
        Profile(
            key="likes",
            queries=(("object detection", 1.0), ("3D", 1.0)),
            liked=(IDS[9], OUTSIDE.id),
            disliked=(IDS[1],),
            since=week,
        ),
        Profile(
            key="categories",
            queries=(("language models", 1.0),),
            categories=("cs.CL",),
            negative=("benchmark",),
            since=week,
        ),
        # Received papers that are not today's count for nothing (not the last paper, say).
        Profile(key="trending only", exclude=frozenset({"2611.99999", IDS[5]}), since=week),
        Profile(
            key="votes",
            queries=(("aggregation", 1.0),),
            liked=tuple(IDS[0:4]),
            disliked=tuple(IDS[40:44]),
            since=week,
            trending_weight=0.6,
        ),
        Profile(key="likes only", liked=(IDS[2], IDS[3]), since=week),
    ]


@pytest.fixture(scope="module")
def day() -> Day:
    return prepare_day(PAPERS, DAY, OPT, {OUTSIDE.id: OUTSIDE})


def _terms(day: Day, doc: int) -> set[str]:
    p = day.papers[doc]
    return set(day.index.terms(p.title)) | set(day.index.terms(p.abstract))


def _with_likes(day: Day, opt: RankOptions, liked: list[int], rel: list[float]) -> list[float]:
    """The likes rule of `likes.py`, paper by paper: each paper's affinity (mean or closest
    similarity to the liked rows) sharpens the match against the affinity at the top share of
    the other papers ("sharpen"), or is added gated by the match ("add")."""
    if not liked:
        return rel
    d, rule, top = len(rel), opt.likes, max(rel)
    pool = max if rule.pool == "max" else (lambda xs: sum(xs) / len(xs))
    affinity = [pool([float(day.example_sim[k, j]) for k in liked]) for j in range(d)]
    others = sorted((a if j not in liked else 0.0 for j, a in enumerate(affinity)), reverse=True)
    reference = others[max(1, min(round(rule.reference * d), d)) - 1]
    out = []
    for j, r in enumerate(rel):
        if top <= 0:
            out.append(r + affinity[j])
        elif rule.mode == "sharpen":
            lift = min(max(affinity[j] / max(reference, 1e-6), 0.0), 1.0) ** rule.power
            out.append(r * (1 + rule.weight * lift))
        else:
            out.append(r + rule.weight * affinity[j] * min(max(r / top, 0.0), 1.0) ** rule.gate)
    return out


def _reference(day: Day, p: Profile, opt: RankOptions, model: np.ndarray | None) -> np.ndarray:
    """One subscriber's final scores, paper by paper (-inf where not allowed)."""
    d = len(day.papers)
    per_query = [(text_relevance(day, [q], opt)[0], w) for q, w in p.queries]
    liked = [day.example_row[x] for x in p.liked]
    disliked = [day.example_row[x] for x in p.disliked]
    rel = []
    for j in range(d):
        scores = [w * float(s[j]) for s, w in per_query]
        best = max(scores, default=0.0)
        rel.append(best + opt.other_queries * (sum(scores) - best) if scores else 0.0)
    rel = _with_likes(day, opt, liked, rel)
    final = np.full(d, -np.inf)
    negative = {t for word in p.negative for t in day.index.analyzer.terms(word)}
    for j in range(d):
        r = rel[j]
        if disliked:
            r -= opt.dislike_weight * max(float(day.example_sim[k, j]) for k in disliked)
        if model is not None:
            r += opt.model_weight * min(max(float(model[j]), -1.0), 1.0)
        paper = day.papers[j]
        wanted = {c.lower() for c in p.categories}
        if wanted & {c.lower() for c in paper.categories}:
            r += opt.category_boost
        trend = float(day.trend[j])
        known = paper.id in p.exclude or paper.id in p.liked or paper.id in p.disliked
        fresh = p.since is None or (paper.announced is not None and paper.announced > p.since)
        blocked = bool(negative & _terms(day, j))
        weight = opt.trending_weight if p.trending_weight is None else p.trending_weight
        if not p.has_interests:
            score = trend
        elif r < opt.min_relevance:
            continue
        else:
            score = r * (1 + weight * trend)
        if fresh and not known and not blocked:
            final[j] = score
    return final


def _dense_model(day: Day, p: Profile) -> np.ndarray:
    """The ridge classifier of `profile.train_models`, solved densely: its score per paper."""
    rows = [day.example_row[x] for x in (*p.liked, *p.disliked)]
    x = np.vstack([day.examples[rows].toarray(), day.background.toarray()]).astype(np.float64)
    n_l, n_bg = len(rows), day.background.shape[0]
    y = np.r_[np.ones(len(p.liked)), -np.ones(len(p.disliked)), -np.ones(n_bg)]
    weight = np.r_[np.ones(n_l), np.full(n_bg, BACKGROUND_WEIGHT)]
    alpha = np.linalg.solve(x @ x.T + np.diag(RIDGE / weight), y)
    out: np.ndarray = (alpha @ x) @ day.index.unit_t.toarray()
    return out


def test_a_mixed_batch_scores_every_subscriber_as_a_plain_loop_does(day: Day) -> None:
    profiles = _profiles()
    final, _, _ = score_batch(day, profiles, OPT)
    assert final.shape == (len(profiles), len(PAPERS))
    for i, p in enumerate(profiles):
        model = _dense_model(day, p) if p.key == "votes" else None
        want = _reference(day, p, OPT, model)
        got = final[i]
        assert np.array_equal(np.isfinite(got), np.isfinite(want)), p.key
        assert np.isfinite(want).sum() >= 10, p.key  # each subscriber has papers to compare
        ok = np.isfinite(want)
        np.testing.assert_allclose(got[ok], want[ok], rtol=2e-5, atol=2e-6, err_msg=str(p.key))


def test_a_subscriber_with_enough_votes_gets_the_dense_ridge_model(day: Day) -> None:
    """The model's weights come from a sparse product; they equal the dense solution."""
    (votes,) = [p for p in _profiles() if p.key == "votes"]
    mats = build_matrices([votes], day.index, day.example_row)
    train_models(mats, 1, day.examples, day.background)
    assert mats.model_weights is not None and mats.model_row.tolist() == [0]
    assert mats.model_weights.has_sorted_indices
    got = (mats.model_weights @ day.index.unit_t).toarray()[0]
    np.testing.assert_allclose(got, _dense_model(day, votes), rtol=1e-4, atol=1e-5)


def _plain_mmr(row: np.ndarray, pair_sim: np.ndarray, k: int, lam: float) -> list[int]:
    """Greedy maximal marginal relevance over the row's 3k best allowed papers."""
    allowed = [j for j in range(len(row)) if np.isfinite(row[j])]
    cand = sorted(allowed, key=lambda j: -row[j])[: 3 * k]
    if not cand:
        return []
    top = float(row[cand[0]])
    rel = {j: float(row[j]) / (top if top > 0 else 1.0) for j in cand}
    maxsim = dict.fromkeys(cand, 0.0)
    chosen: list[int] = []
    for _ in range(min(k, len(cand))):
        left = [j for j in cand if j not in chosen]
        doc = max(left, key=lambda j: lam * rel[j] - (1 - lam) * maxsim[j])
        chosen.append(doc)
        for j in cand:
            maxsim[j] = max(maxsim[j], float(pair_sim[doc, j]))
    return chosen


def test_selection_is_the_plain_greedy_mmr_row_by_row() -> None:
    rng = np.random.default_rng(11)
    final = rng.random((60, 400)).astype(np.float32)
    final[rng.random(final.shape) < 0.6] = -np.inf
    final[7] = -np.inf  # nothing allowed
    final[8, 5:] = -np.inf  # fewer allowed papers than picks
    feats = sparse.random(400, 50, density=0.2, random_state=3, format="csr")
    unit = feats.multiply(1 / np.maximum(np.sqrt(feats.multiply(feats).sum(axis=1)), 1e-9))
    sim = (unit @ unit.T).toarray().astype(np.float32)
    pair_sim = redundancy(sim, OPT.mmr_floor)
    chosen = select(final, pair_sim, 10, OPT.mmr_lambda)
    for row, picks in zip(final, chosen, strict=True):
        want = _plain_mmr(row, pair_sim, 10, OPT.mmr_lambda)
        assert picks.tolist() == want + [-1] * (10 - len(want))
