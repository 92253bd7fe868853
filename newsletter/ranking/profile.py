"""Each subscriber's interest model: what they asked for, turned into sparse matrices.

A `Profile` gathers a subscriber's keywords and free text, categories, liked and disliked
papers (their own picks and their 👍/👎 votes), negative keywords and the papers they
already received. `ProfileMatrices` turns a batch of profiles into row matrices over one
day's `TextIndex`, so the ranker scores every subscriber with a few matrix products. With
enough votes a subscriber also gets a linear model over the papers' tf-idf vectors, trained
like arxiv-sanity-lite's per-tag SVM but in closed form (a ridge classifier solved in its
dual, so each model costs one small linear solve).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
from scipy import sparse

from newsletter.models import Feedback, Interest, InterestKind, as_utc, split_arxiv_id
from newsletter.ranking.textindex import TextIndex

# A subscriber needs this many votes or liked papers (with at least MIN_EACH on each side,
# counting the background sample as negatives) before their own linear model is trained.
MIN_EXAMPLES = 6
MIN_POSITIVES = 2
RIDGE = 1.0
BACKGROUND = 64  # unlabelled papers of the day used as weak negatives
BACKGROUND_WEIGHT = 0.25
# Liked (and, apart, disliked) papers a profile learns from, at most: the latest (`liked`
# lists them by when they were liked, a 👍 or an interest's like alike). A library
# import can bring thousands, and every run reads and indexes them and fits a model whose
# cost grows with the cube of its examples: one reader's 5,000 likes cost seconds a run, and
# 50,000 would need a 20 GB matrix. Which papers they know (and are not shown) counts them all.
MAX_EXAMPLES = 256


@dataclass(frozen=True)
class Profile:
    """What one subscriber wants (and has had), independent of storage."""

    key: Hashable
    queries: tuple[tuple[str, float], ...] = ()  # keywords, phrases, free text, with weights
    categories: tuple[str, ...] = ()
    liked: tuple[str, ...] = ()  # paper ids: liked papers and 👍, oldest first
    disliked: tuple[str, ...] = ()  # paper ids: papers marked "not this" and 👎
    negative: tuple[str, ...] = ()  # negative keywords: papers matching them are dropped
    authors: tuple[str, ...] = ()  # followed authors' names, as the reader wrote them
    exclude: frozenset[str] = frozenset()  # papers already received
    since: date | None = None  # only papers dated after this day
    since_label: str = ""  # "since your last digest on 2026-11-20" (for empty results)
    size: int = 10
    trending_weight: float | None = None  # the reader's own; None: the ranker's option

    @property
    def has_interests(self) -> bool:
        return bool(self.queries or self.categories or self.liked or self.authors)

    @property
    def liked_examples(self) -> tuple[str, ...]:
        """The liked papers it learns from (`MAX_EXAMPLES`)."""
        return self.liked[-MAX_EXAMPLES:]

    @property
    def disliked_examples(self) -> tuple[str, ...]:
        return self.disliked[-MAX_EXAMPLES:]


def _note(ids: dict[str, datetime | None], pid: str, at: datetime | None) -> None:
    """`pid` liked (or disliked) at `at`: the latest time it was counts."""
    if pid not in ids or _stamp(at) > _stamp(ids[pid]):
        ids[pid] = at


def _stamp(at: datetime | None) -> float:
    return float("-inf") if at is None else as_utc(at).timestamp()


def _oldest_first(ids: dict[str, datetime | None]) -> tuple[str, ...]:
    """The papers by when they were liked (or disliked), oldest first; those of unknown time
    first, in the order given: the examples learnt from are the last (`MAX_EXAMPLES`)."""
    return tuple(sorted(ids, key=lambda pid: _stamp(ids[pid])))


def _paper_id(raw: str) -> str:
    try:
        return split_arxiv_id(raw)[0]
    except ValueError:
        return raw.strip()


def profile_from(
    key: Hashable,
    interests: Sequence[Interest],
    feedback: Sequence[Feedback] = (),
    *,
    exclude: frozenset[str] = frozenset(),
    since: date | None = None,
    since_label: str = "",
    size: int = 10,
    trending_weight: float | None = None,
) -> Profile:
    """Build a profile from stored interests and 👍/👎 votes. Where a vote and an interest's
    like (or "not this") disagree, the later one wins; a vote of unknown time always wins."""
    queries: list[tuple[str, float]] = []
    cats: list[str] = []
    liked: dict[str, datetime | None] = {}  # paper id -> when it was liked, when known
    disliked: dict[str, datetime | None] = {}
    negative: list[str] = []
    authors: list[str] = []
    for i in interests:
        value = i.value.strip()
        if not value:
            continue
        if i.kind in (InterestKind.KEYWORD, InterestKind.TEXT):
            queries.append((value, max(float(i.weight), 0.0)))
        elif i.kind == InterestKind.CATEGORY:
            cats.append(value)
        elif i.kind == InterestKind.LIKE:
            _note(liked, _paper_id(value), i.created_at)
        elif i.kind == InterestKind.NOT_PAPER:
            _note(disliked, _paper_id(value), i.created_at)
        elif i.kind == InterestKind.NOT_KEYWORD:
            negative.append(value)
        elif i.kind == InterestKind.AUTHOR:
            authors.append(value)
    for f in feedback:
        pid = _paper_id(f.paper_id)
        mine, other = (liked, disliked) if f.vote > 0 else (disliked, liked)
        if f.created_at is not None and _stamp(other.get(pid)) > _stamp(f.created_at):
            continue  # liked (or "not this") in the interests after this vote
        _note(mine, pid, f.created_at)
        other.pop(pid, None)
    return Profile(
        key=key,
        queries=tuple(queries),
        categories=tuple(dict.fromkeys(cats)),
        liked=_oldest_first(liked),
        disliked=_oldest_first(disliked),
        negative=tuple(negative),
        authors=tuple(dict.fromkeys(authors)),
        exclude=exclude,
        since=since,
        since_label=since_label,
        size=size,
        trending_weight=trending_weight,
    )


def _owners(counts: Sequence[int]) -> np.ndarray:
    return np.repeat(np.arange(len(counts)), counts).astype(np.int64)


@dataclass
class ProfileMatrices:
    """Row matrices for a batch of profiles; `*_owner[r]` is the profile of row r."""

    query_weight: np.ndarray  # the interest's weight
    query_owner: np.ndarray
    liked_rows: np.ndarray  # rows of the example matrix
    liked_owner: np.ndarray
    disliked_rows: np.ndarray
    disliked_owner: np.ndarray
    negative: sparse.csr_matrix  # phrase rows of negative keywords
    negative_need: np.ndarray
    negative_owner: np.ndarray
    model_weights: sparse.csr_matrix | None = None  # one row per trained model
    model_row: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def build_matrices(
    profiles: Sequence[Profile],
    index: TextIndex,
    example_row: Mapping[str, int],
) -> ProfileMatrices:
    """Turn profiles into matrices over `index`; `example_row` maps liked/disliked ids to rows."""
    liked = [[example_row[i] for i in p.liked_examples if i in example_row] for p in profiles]
    disliked = [[example_row[i] for i in p.disliked_examples if i in example_row] for p in profiles]
    neg, need = index.phrase_rows([t for p in profiles for t in p.negative])
    flat = [r for rows in liked for r in rows]
    flat_dis = [r for rows in disliked for r in rows]
    return ProfileMatrices(
        query_weight=np.array([w for p in profiles for _, w in p.queries], dtype=np.float32),
        query_owner=_owners([len(p.queries) for p in profiles]),
        liked_rows=np.array(flat, dtype=np.int64),
        liked_owner=_owners([len(r) for r in liked]),
        disliked_rows=np.array(flat_dis, dtype=np.int64),
        disliked_owner=_owners([len(r) for r in disliked]),
        negative=neg,
        negative_need=need,
        negative_owner=_owners([len(p.negative) for p in profiles]),
    )


def train_models(
    mats: ProfileMatrices,
    n_profiles: int,
    examples: sparse.csr_matrix,
    background: sparse.csr_matrix,
) -> None:
    """Fit a ridge classifier per profile with enough votes; stores weight rows in `mats`.

    Positives (+1) are liked papers, negatives (-1) disliked ones; a fixed sample of the
    day's papers joins as down-weighted negatives, as arxiv-sanity-lite uses all other papers.
    Solved in the dual: alpha = (K + lambda W^-1)^-1 y with K the n x n kernel, w = X^T alpha.
    """
    pos = _group(mats.liked_rows, mats.liked_owner)
    neg = _group(mats.disliked_rows, mats.disliked_owner)
    trained = [
        p
        for p in set(pos) | set(neg)
        if len(pos.get(p, ())) >= MIN_POSITIVES
        and len(pos.get(p, ())) + len(neg.get(p, ())) >= MIN_EXAMPLES
    ]
    trained.sort()
    mats.model_row = np.full(n_profiles, -1, dtype=np.int64)
    if not trained:
        return
    n_bg = background.shape[0]
    bg_kernel = (background @ background.T).toarray()
    rows: list[sparse.csr_matrix] = []
    for p in trained:
        labelled = examples[np.concatenate([pos.get(p, []), neg.get(p, [])]).astype(np.int64)]
        x = sparse.vstack([labelled, background]).tocsr()
        n_l = labelled.shape[0]
        k = np.empty((x.shape[0],) * 2, dtype=np.float64)
        k[:n_l] = (labelled @ x.T).toarray()
        k[n_l:, :n_l] = k[:n_l, n_l:].T
        k[n_l:, n_l:] = bg_kernel
        y = np.concatenate(
            [np.ones(len(pos.get(p, ()))), -np.ones(len(neg.get(p, ()))), -np.ones(n_bg)]
        )
        weight = np.concatenate([np.ones(n_l), np.full(n_bg, BACKGROUND_WEIGHT)])
        alpha = np.linalg.solve(k + np.diag(RIDGE / weight), y)
        # w = alpha^T X as a sparse product: the dense route made a vocabulary-wide row per
        # model. Same sums in the same order; sorted indices keep the later products' order.
        w = sparse.csr_matrix(alpha[None, :].astype(np.float32)) @ x
        w.sort_indices()
        rows.append(w)
    mats.model_row[trained] = np.arange(len(trained))
    mats.model_weights = sparse.vstack(rows).tocsr()


def _group(rows: np.ndarray, owner: np.ndarray) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for r, o in zip(rows.tolist(), owner.tolist(), strict=True):
        out.setdefault(o, []).append(r)
    return out
