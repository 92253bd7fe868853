"""The ranker as the public site asks it: one query over a set of candidate papers.

Search results and "similar papers" are scored by the code that scores a subscriber's
interests in a digest (`scoring.text_relevance` over a `Day` built by `prepare_day`), so a
search for "KV cache" orders papers as a digest with that keyword would: BM25F with the
title field, stemming, phrase bigrams and feedback expansion, times the trending boost.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from datetime import date

import numpy as np

from newsletter.models import Paper
from newsletter.ranking.scoring import RankOptions, prepare_day, text_relevance
from newsletter.ranking.textindex import Analyzer

__all__ = ["highlight", "query_terms", "search_scores", "similar_scores"]

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
_ANALYZER = Analyzer(stem=True, bigrams=False)


def search_scores(
    papers: Sequence[Paper], query: str, *, today: date | None, options: RankOptions
) -> tuple[np.ndarray, np.ndarray]:
    """(final score, relevance) of each paper for `query`: relevance × (1 + w × trending)."""
    if not papers:
        empty = np.zeros(0, dtype=np.float32)
        return empty, empty
    day = prepare_day(papers, today, options)
    relevance = text_relevance(day, [query], options)[0]
    final: np.ndarray = relevance * (1 + options.trending_weight * day.trend)
    return final, relevance


def similar_scores(paper: Paper, candidates: Sequence[Paper], options: RankOptions) -> np.ndarray:
    """Cosine similarity of each candidate to `paper` in the ranker's tf-idf space.

    The same vectors as `TextIndex.unit` over these papers (the index's analyser, sublinear tf
    times its idf, words only), computed directly: a whole index (BM25F weights, bigrams,
    transposes) for some 30 papers costs more than the similarity itself.
    """
    if not candidates:
        return np.zeros(0, dtype=np.float32)
    analyzer = Analyzer(stem=options.index.stem, bigrams=False)
    counts = [Counter(analyzer.terms(f"{p.title}\n{p.abstract}")) for p in (paper, *candidates)]
    n = len(counts)
    df = Counter(t for c in counts for t in c)
    idf = {t: math.log1p((n - d + 0.5) / (d + 0.5)) for t, d in df.items()}

    def unit(c: Counter[str]) -> dict[str, float]:
        w = {t: (1.0 + math.log(k)) * idf[t] for t, k in c.items()}
        norm = math.sqrt(sum(v * v for v in w.values())) or 1.0
        return {t: v / norm for t, v in w.items()}

    q = unit(counts[0])
    sims = [sum(q.get(t, 0.0) * v for t, v in unit(c).items()) for c in counts[1:]]
    return np.array(sims, dtype=np.float32)


def query_terms(query: str) -> frozenset[str]:
    """The normalised words of a query, as the ranker's analyser stems them."""
    return frozenset(t for t in _ANALYZER.words(query, typed=True) if t)


def highlight(text: str, terms: frozenset[str]) -> list[tuple[str, bool]]:
    """`text` cut into (piece, is_match) runs: words whose stem is one of `terms` match."""
    if not terms:
        return [(text, False)]
    out: list[tuple[str, bool]] = []
    last = 0
    term = _ANALYZER.term
    for m in _WORD.finditer(text):
        if term(m.group()) in terms:
            if m.start() > last:
                out.append((text[last : m.start()], False))
            out.append((m.group(), True))
            last = m.end()
    if last < len(text):
        out.append((text[last:], False))
    return out
