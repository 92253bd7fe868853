"""Relevance and the hard rules for one batch of subscribers over one day's papers.

Relevance per subscriber (each term a matrix product over a whole batch of subscribers):
- interests (keywords, phrases, free text): BM25F with a weighted title field, stemming and
  bigram phrase terms, scaled by the query's best possible score, plus an RM3-style
  pseudo-relevance-feedback expansion scored the same way;
- liked papers and 👍 scale the interest match up by each paper's similarity to them
  (likes.py), disliked papers and 👎 subtract theirs; with enough votes a per-subscriber
  linear model (profile.train_models) adds its output;
- arXiv categories boost (or, in "filter" mode, restrict to) matching papers;
- negative keywords, papers already received and papers older than the last digest are out.
The final score is relevance × (1 + trending_weight × trending); subscribers without
interests get the trending order.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date

import numpy as np
from scipy import sparse

from newsletter.models import Paper
from newsletter.ranking.acronyms import Acronyms
from newsletter.ranking.authors import AuthorIndex, author_boost, index_authors, papers_with_any
from newsletter.ranking.coverage import discount_partial
from newsletter.ranking.facets import facets
from newsletter.ranking.feedback import pseudo_feedback
from newsletter.ranking.likes import LikeRule, add_likes
from newsletter.ranking.profile import (
    BACKGROUND,
    Profile,
    ProfileMatrices,
    build_matrices,
    train_models,
)
from newsletter.ranking.semantic import Encoder, blend
from newsletter.ranking.textindex import IndexSettings, TextIndex
from newsletter.ranking.traction import Rise
from newsletter.ranking.trending import paper_day, trending_scores

QUERY_CACHE = 20_000  # distinct interest texts whose scores are kept for the day


@dataclass(frozen=True)
class RankOptions:
    """Knobs of the ranker; `RANKERS` names the tested combinations."""

    index: IndexSettings = field(default_factory=IndexSettings)
    prf_docs: int = 5  # pseudo-relevance feedback: top papers per query (0 = off)
    prf_terms: int = 20  # words in each query's expansion
    prf_weight: float = 1.0
    other_queries: float = 0.1  # weight of a subscriber's other matching interests
    facet_weight: float = 0.5  # soft AND over an interest's facets (0 = off)
    facet_saturation: float = 0.5  # a facet scoring this much of its best counts as covered
    facet_feedback: bool = True  # facets scored with pseudo-relevance feedback too
    acronyms: bool = True  # acronyms and their long forms match each other
    likes: LikeRule = field(default_factory=LikeRule)  # how liked papers sharpen (likes.py)
    dislike_weight: float = 1.0
    model_weight: float = 0.5
    category_mode: str = "boost"  # or "filter"
    category_boost: float = 0.15
    author_boost: float = 0.6  # a followed author's paper: about a strong interest match
    trending_weight: float = 0.25
    mmr_lambda: float = 0.7  # 1.0 = no diversification
    mmr_floor: float = 0.4  # similarity below this is not counted as redundancy
    min_relevance: float = 0.05  # below this a paper is not a pick for a subscriber
    # With a semantic model (semantic.py): a perfect embedding match adds this share of the
    # interest's best lexical score.
    semantic_weight: float = 0.5


@dataclass
class Day:
    """Everything computed once per day of papers, shared by every subscriber batch."""

    papers: Sequence[Paper]
    index: TextIndex
    sim: np.ndarray  # paper-to-paper cosine similarity (dense, papers x papers)
    trend: np.ndarray
    day: np.ndarray | None  # ordinal day per paper, None when papers carry no dates
    position: dict[str, int]
    examples: sparse.csr_matrix  # unit vectors: the day's papers, then outside examples
    example_row: dict[str, int]
    example_sim: np.ndarray  # similarity of each example row to each paper (dense)
    background: sparse.csr_matrix
    categories: dict[str, int]
    paper_categories: sparse.csr_matrix
    semantic: np.ndarray | None = None  # unit embeddings of the papers
    today: date | None = None
    acronyms: Acronyms = field(default_factory=Acronyms)  # learnt from the day's papers
    query_cache: dict[str, np.ndarray] = field(default_factory=dict)  # text -> scores
    rising: dict[int, Rise] = field(default_factory=dict)  # paper -> its late rise
    _authors: AuthorIndex | None = None

    @property
    def authors(self) -> AuthorIndex:
        """The papers' authors by normalised name, built when a subscriber follows someone."""
        if self._authors is None:
            self._authors = index_authors(self.papers)
        return self._authors


def prepare_day(
    papers: Sequence[Paper],
    today: date | None,
    options: RankOptions,
    examples: Mapping[str, Paper] = {},
    encoder: Encoder | None = None,
    rising: Mapping[str, Rise] = {},
) -> Day:
    """Index the day's papers (and the outside papers subscribers liked or disliked); papers
    in `rising` stay candidates for readers who saw their first day (traction.py)."""
    day = _index_day(tuple(papers), today, options, encoder)
    outside = [p for pid, p in examples.items() if pid not in day.position]
    extra = day.index.vectors(f"{p.title}\n{p.abstract}" for p in outside)
    n = len(papers)
    return replace(
        day,
        examples=sparse.vstack([day.index.unit, extra]).tocsr(),
        example_sim=np.vstack([day.sim, (extra @ day.index.unit_t).toarray()]),
        example_row=dict(day.position) | {p.id: n + i for i, p in enumerate(outside)},
        rising={day.position[pid]: r for pid, r in rising.items() if pid in day.position},
    )


@functools.lru_cache(maxsize=2)
def _index_day(
    papers: tuple[Paper, ...], today: date | None, options: RankOptions, encoder: Encoder | None
) -> Day:
    """The per-day work, cached: a send ranks its subscribers in many batches."""
    acronyms = Acronyms.learn(f"{p.title}\n{p.abstract}" for p in papers)
    index = TextIndex(
        [p.title for p in papers],
        [p.abstract for p in papers],
        options.index,
        acronyms if options.acronyms else None,
    )
    ordinals = None
    if today is not None:
        days = [paper_day(p, today) or today for p in papers]
        ordinals = np.array([d.toordinal() for d in days], dtype=np.int64)
    cats: dict[str, int] = {}
    rows, cols = [], []
    for i, p in enumerate(papers):
        for c in p.categories:
            rows.append(i)
            cols.append(cats.setdefault(c.lower(), len(cats)))
    paper_cats = sparse.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(papers), len(cats))
    )
    rng = np.random.default_rng(0)
    bg = rng.choice(len(papers), size=min(BACKGROUND, len(papers)), replace=False)
    return Day(
        papers=papers,
        index=index,
        sim=(index.unit @ index.unit.T).toarray().astype(np.float32),
        trend=trending_scores(papers, today),
        day=ordinals,
        position={p.id: i for i, p in enumerate(papers)},
        examples=index.unit,
        example_row={},
        example_sim=np.zeros((0, len(papers)), dtype=np.float32),
        background=index.unit[np.sort(bg)],
        categories=cats,
        paper_categories=paper_cats,
        semantic=encoder.encode([f"{p.title}. {p.abstract}" for p in papers]) if encoder else None,
        today=today,
        acronyms=acronyms if options.acronyms else Acronyms({}),
    )


def _segment(values: np.ndarray, owner: np.ndarray, n: int, how: str) -> np.ndarray:
    """Reduce rows to their owners (rows sorted by owner): "max" or "sum"; absent rows give 0."""
    if len(owner) == n and (n == 0 or (owner[-1] == n - 1 and np.all(np.diff(owner) == 1))):
        return values.astype(np.float32, copy=False)  # one row each: nothing to reduce
    out = np.zeros((n, values.shape[1]), dtype=np.float32)
    if len(owner) == 0:
        return out
    who, reduced = _reduce_owned(values, owner, how)
    out[who] = reduced
    return out


def _reduce_owned(values: np.ndarray, owner: np.ndarray, how: str) -> tuple[np.ndarray, np.ndarray]:
    """Rows reduced per owner (rows sorted by owner, at least one): the owners, their rows.

    For terms only a few subscribers have (dislikes, negative keywords), so the batch's other
    rows are left alone rather than densified to zeros and passed over.
    """
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    ufunc = np.maximum if how == "max" else np.add
    reduced: np.ndarray = ufunc.reduceat(values, starts, axis=0)
    return owner[starts], reduced


def _best_and_rest(values: np.ndarray, owner: np.ndarray, n: int, rest: float) -> np.ndarray:
    """Per owner: its best row, plus `rest` times the sum of its other rows."""
    best = _segment(values, owner, n, "max")
    if rest == 0 or len(np.unique(owner)) == len(owner):
        return best
    out: np.ndarray = best + rest * (_segment(values, owner, n, "sum") - best)
    return out


def _text_scores(
    day: Day, texts: Sequence[str], opt: RankOptions, encoder: Encoder | None, *, feedback: bool
) -> np.ndarray:
    """BM25F of each text scaled by its best possible score, fused with the semantic encoder
    and with pseudo-relevance feedback added when asked (one row per text)."""
    qm, ideal = day.index.query_matrix(texts)
    s: np.ndarray = (qm @ day.index.bm25_t).toarray().astype(np.float32)
    s /= np.maximum(ideal, 1e-6)[:, None]
    if encoder is not None and day.semantic is not None:
        s = blend(s, encoder.encode(list(texts)) @ day.semantic.T, opt.semantic_weight)
    if feedback and opt.prf_docs > 0 and opt.prf_weight > 0:
        s += opt.prf_weight * pseudo_feedback(s, day.index, opt.prf_docs, opt.prf_terms)
    return s


def _query_scores(
    day: Day, texts: Sequence[str], opt: RankOptions, encoder: Encoder | None
) -> tuple[np.ndarray, np.ndarray]:
    """Relevance of every paper to each distinct text (rows of U, then a row of zeros), and
    each text's row in U.

    Feedback expansion is included. A text depends on nothing but the day, so each distinct
    text is scored once per day and shared by every subscriber who wrote it.
    """
    cache = day.query_cache
    distinct = list(dict.fromkeys(texts))
    missing = [t for t in distinct if t not in cache]
    if missing:
        s = _text_scores(day, missing, opt, encoder, feedback=True)
        discount_partial(
            s,
            [facets(t, day.acronyms) for t in missing],
            lambda t: _text_scores(day, t, opt, None, feedback=opt.facet_feedback),
            weight=opt.facet_weight,
            saturation=opt.facet_saturation,
        )
        if len(cache) + len(missing) > QUERY_CACHE:
            cache.clear()
        cache.update(zip(missing, s, strict=True))
    row = {t: i for i, t in enumerate(distinct)}
    # One extra row of zeros at the end: the padding row of `_query_relevance`.
    rows = [cache[t] for t in distinct]
    rows.append(np.zeros(len(day.papers), dtype=np.float32))
    table = np.stack(rows).astype(np.float32, copy=False)
    return table, np.array([row[t] for t in texts])


def text_relevance(day: Day, texts: Sequence[str], opt: RankOptions) -> np.ndarray:
    """Relevance of every paper of `day` to each text, as an interest is scored (one row each)."""
    scores, which = _query_scores(day, texts, opt, None)
    out: np.ndarray = scores[which]
    return out


def _query_relevance(
    day: Day,
    mats: ProfileMatrices,
    profiles: Sequence[Profile],
    opt: RankOptions,
    encoder: Encoder | None,
) -> np.ndarray:
    """Per subscriber: their best-matching interest, plus a little for each other match."""
    n, d = len(profiles), len(day.papers)
    texts = [q for p in profiles for q, _ in p.queries]
    if not texts:
        return np.zeros((n, d), dtype=np.float32)
    scores, which = _query_scores(day, texts, opt, encoder)
    counts = np.array([len(p.queries) for p in profiles])
    widest = int(counts.max())
    if widest <= 4 and np.all(mats.query_weight == 1.0):
        # Gather each subscriber's (padded) rows into n x widest x papers and reduce there.
        padded = np.full((n, widest), len(scores) - 1, dtype=np.int64)  # the zeros row
        slot = np.arange(len(texts)) - np.repeat(np.cumsum(counts) - counts, counts)
        padded[mats.query_owner, slot] = which
        best = np.take(scores, padded[:, 0], axis=0)
        if widest == 1:
            return best
        row = np.take(scores, padded[:, 1], axis=0)
        total = best + row  # the sum in the same order as before, one pass fewer than a copy
        np.maximum(best, row, out=best)
        for k in range(2, widest):
            np.take(scores, padded[:, k], axis=0, out=row)
            np.maximum(best, row, out=best)
            total += row
        total -= best
        total *= opt.other_queries
        best += total
        return best
    s = scores[which] * mats.query_weight[:, None]
    return _best_and_rest(s, mats.query_owner, n, opt.other_queries)


def score_batch(
    day: Day, profiles: Sequence[Profile], opt: RankOptions, encoder: Encoder | None = None
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Final scores (-inf where not allowed), relevance, and per-subscriber candidate counts."""
    n = len(profiles)
    mats = build_matrices(profiles, day.index, day.example_row)
    rel = _query_relevance(day, mats, profiles, opt, encoder)
    if len(mats.liked_rows):
        sims = day.example_sim[mats.liked_rows]
        add_likes(rel, sims, mats.liked_rows, mats.liked_owner, opt.likes)
    if len(mats.disliked_rows):
        who, closest = _reduce_owned(
            day.example_sim[mats.disliked_rows], mats.disliked_owner, "max"
        )
        rel[who] -= opt.dislike_weight * closest.astype(np.float32, copy=False)
    train_models(mats, n, day.examples, day.background)
    if mats.model_weights is not None:
        who = np.flatnonzero(mats.model_row >= 0)
        out = (mats.model_weights[mats.model_row[who]] @ day.index.unit_t).toarray()
        rel[who] += opt.model_weight * np.clip(out, -1.0, 1.0)
    allowed, fresh, unsent = _known_and_fresh(day, profiles)
    if any(p.categories for p in profiles) and day.categories:
        _category_term(day, profiles, opt, rel, allowed)
    if any(p.authors for p in profiles):
        author_boost(day.authors, [p.authors for p in profiles], opt.author_boost, rel)
    if mats.negative.shape[0]:
        hits = (mats.negative @ day.index.presence.T).toarray() >= mats.negative_need[:, None]
        who, hit = _reduce_owned(hits, mats.negative_owner, "max")
        allowed[who] &= ~hit
    wants = np.array([p.has_interests for p in profiles], dtype=bool)
    if mats.model_weights is not None:
        wants[mats.model_row >= 0] = True
    final = np.multiply(rel, _trending_boost(profiles, opt, day.trend), dtype=np.float32)
    if not wants.all():
        final[~wants] = day.trend[None, :]
    counts = {"fresh": fresh, "unsent": unsent, "allowed": allowed.copy()}
    weak = rel < opt.min_relevance
    weak[~wants] = False
    allowed &= ~weak
    np.copyto(final, -np.inf, where=~allowed)
    return final, rel, counts


def _trending_boost(profiles: Sequence[Profile], opt: RankOptions, trend: np.ndarray) -> np.ndarray:
    """1 + weight × trending: one row for all, or one per reader when a reader chose a mix."""
    own = [p.trending_weight for p in profiles]
    if all(w is None for w in own):
        weights = np.full((1, 1), opt.trending_weight, dtype=np.float32)
    else:
        weights = np.array([opt.trending_weight if w is None else w for w in own], np.float32)
        weights = weights[:, None]
    boost: np.ndarray = (1.0 + weights * trend[None, :]).astype(np.float32)
    return boost


def _known_and_fresh(
    day: Day, profiles: Sequence[Profile]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Papers dated after each subscriber's last digest and not yet known to them, with the
    counts of fresh and of fresh-and-unseen papers (for explaining an empty digest)."""
    n, d = len(profiles), len(day.papers)
    allowed = np.ones((n, d), dtype=bool)
    if day.day is not None:
        since = np.array(
            [p.since.toordinal() if p.since else -(2**62) for p in profiles], dtype=np.int64
        )
        allowed &= day.day[None, :] > since[:, None]
        if day.rising:
            allowed[:, list(day.rising)] = True  # gained traction after their first day
    fresh = allowed.sum(axis=1)
    # Papers already received, and those they named as liked or disliked: they know them.
    # One flat pass over every id (-1: not today's), not a loop per subscriber and list.
    get = day.position.get
    known = [[get(x, -1) for x in (*p.exclude, *p.liked, *p.disliked)] for p in profiles]
    counts = [len(ids) for ids in known]
    cols = np.fromiter(itertools.chain.from_iterable(known), np.int64, count=sum(counts))
    rows = np.repeat(np.arange(n), counts)
    today = cols >= 0
    allowed[rows[today], cols[today]] = False
    return allowed, fresh, allowed.sum(axis=1)


def _category_term(
    day: Day, profiles: Sequence[Profile], opt: RankOptions, rel: np.ndarray, allowed: np.ndarray
) -> None:
    """Boost papers in the subscriber's categories (in "filter" mode, allow only those).

    Only the subscribers who named categories (typically a few) get a row in the product.
    """
    has = [i for i, p in enumerate(profiles) if p.categories]
    wanted = [(day.categories.get(c.lower()) for c in profiles[i].categories) for i in has]
    keys_per_row = [[j for j in row if j is not None] for row in wanted]
    match = papers_with_any(keys_per_row, day.paper_categories.T)
    who = np.array(has, dtype=np.int64)
    if opt.category_mode == "filter":
        allowed[who] &= match
    rel[who] += (opt.category_boost * match).astype(np.float32)
