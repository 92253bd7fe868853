"""Outside baselines for `newsletter eval compare`, written small so every figure has one beside it.

- `bm25`: Okapi BM25 (k1 1.2, b 0.75) on the interest text over title + abstract, unstemmed
  words without stop words: the classic lexical baseline, independent of our ranker's index.
- `tfidf`: cosine between the sublinear tf-idf vectors of the interest text and of each paper.
- `svm`: arxiv-sanity-lite's per-user model: tf-idf over words and bigrams (min_df 5,
  max_df 0.1, at most 20,000 features, sublinear tf, l2 rows), and a linear SVM (squared hinge,
  C 0.01, balanced class weights, an intercept) trained with the liked papers as positives and
  every other paper as a negative; papers are ranked by its decision value. Only for profiles
  with liked papers. Solved exactly by Newton's method in kernel form, so it needs nothing
  beyond numpy (scikit-learn is not a dependency).

Each baseline maps (papers, profile) to paper ids best first, never the profile's own liked or
excluded papers, so its runs score like the digest ranker's.
"""

from __future__ import annotations

import itertools
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from newsletter.models import Paper
from newsletter.ranking.profile import Profile
from newsletter.ranking.textindex import STOPWORDS, Analyzer

SVM_C = 0.01
SVM_NEWTON_STEPS = 50


def _text(paper: Paper) -> str:
    return f"{paper.title}\n{paper.abstract}"


def _interest(profile: Profile) -> str:
    return "\n".join(text for text, _ in profile.queries)


def _order(papers: Sequence[Paper], scores: np.ndarray, profile: Profile, k: int) -> list[str]:
    skip = set(profile.liked) | set(profile.exclude)
    order = np.argsort(-scores, kind="stable")
    out = [papers[i].id for i in order.tolist() if papers[i].id not in skip]
    return out[:k]


class _Words:
    """Unstemmed content words of every paper, counted once."""

    def __init__(self, papers: Sequence[Paper]) -> None:
        self.analyzer = Analyzer(stem=False, bigrams=False)
        self.docs = [Counter(self.analyzer.terms(_text(p))) for p in papers]
        self.df: Counter[str] = Counter()
        for doc in self.docs:
            self.df.update(doc.keys())
        self.n = len(papers)
        self.tfidf: tuple[dict[str, int], np.ndarray, np.ndarray] | None = None  # built once


def bm25_scores(words: _Words, query: str, k1: float = 1.2, b: float = 0.75) -> np.ndarray:
    """Okapi BM25 of each paper for `query` (each distinct query word counted once)."""
    lengths = np.array([sum(d.values()) for d in words.docs], dtype=np.float64)
    avg = max(float(lengths.mean()), 1e-9)
    scores = np.zeros(words.n)
    for term in set(words.analyzer.terms(query)):
        df = words.df.get(term, 0)
        if not df:
            continue
        idf = math.log1p((words.n - df + 0.5) / (df + 0.5))
        tf = np.array([d.get(term, 0) for d in words.docs], dtype=np.float64)
        scores += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * lengths / avg))
    return scores


def _tfidf_rows(
    counts: Sequence[Counter[str]], vocab: dict[str, int], idf: np.ndarray
) -> np.ndarray:
    """Dense sublinear tf-idf rows, scaled to unit length (the corpus is small)."""
    m = np.zeros((len(counts), len(vocab)))
    for i, doc in enumerate(counts):
        for term, c in doc.items():
            j = vocab.get(term)
            if j is not None:
                m[i, j] = (1.0 + math.log(c)) * idf[j]
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return m / np.where(norms > 0, norms, 1.0)


def _smooth_idf(words: _Words, vocab: dict[str, int]) -> np.ndarray:
    df = np.array([words.df[t] for t in vocab], dtype=np.float64)
    return np.log((1 + words.n) / (1 + df)) + 1.0


def tfidf_cosine_scores(words: _Words, query: str) -> np.ndarray:
    """Cosine of the query's tf-idf vector with each paper's (smooth idf, sublinear tf)."""
    if words.tfidf is None:
        vocab = {t: j for j, t in enumerate(words.df)}
        idf = _smooth_idf(words, vocab)
        words.tfidf = (vocab, idf, _tfidf_rows(words.docs, vocab, idf))
    vocab, idf, docs = words.tfidf
    q = _tfidf_rows([Counter(words.analyzer.terms(query))], vocab, idf)[0]
    return np.asarray(docs @ q)


_SANITY_TOKEN = re.compile(r"\b[a-z_][a-z0-9_]+\b")


def sanity_terms(text: str) -> list[str]:
    """Words and bigrams as arxiv-sanity-lite's TfidfVectorizer forms them: accents stripped,
    lower case, tokens of 2+ characters starting with a letter, stop words dropped, then every
    adjacent pair of the remaining tokens."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    words = [w for w in _SANITY_TOKEN.findall(plain) if w not in STOPWORDS]
    return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]


def sanity_features(
    papers: Sequence[Paper], min_df: int = 5, max_df: float = 0.1, limit: int = 20_000
) -> np.ndarray:
    """arxiv-sanity-lite's tf-idf matrix: terms in at least `min_df` and at most `max_df` of the
    papers, the `limit` most frequent of them, sublinear tf, smooth idf, unit rows."""
    docs = [Counter(sanity_terms(_text(p))) for p in papers]
    df: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for doc in docs:
        df.update(doc.keys())
        total.update(doc)
    kept = [t for t, d in df.items() if min_df <= d <= max_df * len(docs)]
    kept = sorted(kept, key=lambda t: (-total[t], t))[:limit]
    vocab = {t: j for j, t in enumerate(sorted(kept))}
    counts = np.array([df[t] for t in vocab], dtype=np.float64)
    idf = np.log((1 + len(docs)) / (1 + counts)) + 1.0
    return _tfidf_rows(docs, vocab, idf)


def linear_svm(x: np.ndarray, y: np.ndarray, c: float = SVM_C) -> np.ndarray:
    """Decision values on x of a linear SVM fitted to (x, y): LinearSVC's problem, solved exactly.

    minimise ½‖w‖² + Σᵢ Cᵢ max(0, 1 − yᵢ wᵀx̃ᵢ)² with x̃ = (x, 1) (the intercept is a feature, as
    in liblinear) and Cᵢ = C·n / (2·count of yᵢ's class) ("balanced"). With w = Σ βⱼ x̃ⱼ the
    optimum solves (K_SS + diag(1/2C_S)) β_S = y_S on the set S of margin violators; Newton's
    method on S (Chapelle 2007) reaches it in a few exact solves of the n × n kernel.
    """
    n = len(y)
    n_pos = int((y > 0).sum())
    if n_pos in (0, n):
        raise ValueError("a linear SVM needs both positive and negative examples")
    cost = c * np.where(y > 0, n / (2 * n_pos), n / (2 * (n - n_pos)))
    k = x @ x.T + 1.0
    active = np.ones(n, dtype=bool)
    f = np.zeros(n)
    for _ in range(SVM_NEWTON_STEPS):
        idx = np.flatnonzero(active)
        beta = np.linalg.solve(k[np.ix_(idx, idx)] + np.diag(1.0 / (2 * cost[idx])), y[idx])
        f = k[:, idx] @ beta
        violators = y * f < 1.0
        if np.array_equal(violators, active) or not violators.any():
            break
        active = violators
    return f


RankFn = Callable[[Sequence[Paper], Sequence[Profile], int], dict[str, list[str]]]


@dataclass(frozen=True)
class Baseline:
    """One outside ranker: `rank(papers, profiles, k)` gives ids best first per profile."""

    name: str
    needs_likes: bool
    rank: RankFn


def _by_interest(score: Callable[[_Words, str], np.ndarray]) -> RankFn:
    """A baseline that scores each profile's interest text with `score`."""

    def rank(papers: Sequence[Paper], profiles: Sequence[Profile], k: int) -> dict[str, list[str]]:
        words = _Words(papers)
        return {
            str(p.key): _order(papers, score(words, _interest(p)), p, k)
            for p in profiles
            if p.queries
        }

    return rank


def _svm(papers: Sequence[Paper], profiles: Sequence[Profile], k: int) -> dict[str, list[str]]:
    x = sanity_features(papers)
    ids = [p.id for p in papers]
    out = {}
    for p in profiles:
        liked = set(p.liked) & set(ids)
        if not liked:
            continue
        y = np.array([1.0 if i in liked else -1.0 for i in ids])
        out[str(p.key)] = _order(papers, linear_svm(x, y), p, k)
    return out


BASELINES: dict[str, Baseline] = {
    b.name: b
    for b in (
        Baseline("bm25-plain", False, _by_interest(bm25_scores)),
        Baseline("tfidf-cosine", False, _by_interest(tfidf_cosine_scores)),
        Baseline("sanity-svm", True, _svm),
    )
}
