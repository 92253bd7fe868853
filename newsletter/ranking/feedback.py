"""Pseudo-relevance feedback (RM3-style): an interest widened by the words of its top papers.

The expansion is the heaviest words of the score-weighted mean tf-idf vector of each query's
top papers, scored with the same BM25F weights and scaled by its best possible score, so it
lifts papers on the topic that use other words for it.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from newsletter.ranking.textindex import TextIndex, top_k_per_row


def _expansion_scores(
    weights: sparse.csr_matrix, vectors: sparse.csr_matrix, index: TextIndex, terms: int
) -> np.ndarray:
    """Score every paper against the `terms` heaviest words of `weights @ vectors` (a row each)."""
    pooled = (weights @ vectors).tocsr()
    pooled.sum_duplicates()
    row = np.repeat(np.arange(pooled.shape[0]), np.diff(pooled.indptr))
    keep = top_k_per_row(row, pooled.data, terms)
    expansion = sparse.csr_matrix(
        (pooled.data[keep], (row[keep], pooled.indices[keep])), shape=pooled.shape
    )
    mass = np.asarray(expansion.sum(axis=1)).ravel()
    normalized = sparse.diags(1.0 / np.maximum(mass, 1e-9)) @ expansion
    ideal = normalized @ index.idf
    out = (normalized @ index.bm25_t).toarray().astype(np.float32)
    scaled: np.ndarray = out / np.maximum(ideal, 1e-6)[:, None]
    return scaled


def pseudo_feedback(scores: np.ndarray, index: TextIndex, m: int, terms: int) -> np.ndarray:
    """Each query's expansion from its own top-m papers (weighted by their scores)."""
    m = min(m, scores.shape[1])
    top = np.argpartition(-scores, m - 1, axis=1)[:, :m]
    w = np.maximum(np.take_along_axis(scores, top, axis=1), 0)
    total = w.sum(axis=1, keepdims=True)
    w = np.divide(w, total, out=np.zeros_like(w), where=total > 0)
    rows = np.repeat(np.arange(scores.shape[0]), m)
    weights = sparse.csr_matrix((w.ravel(), (rows, top.ravel())), shape=scores.shape)
    return _expansion_scores(weights, index.top_terms, index, terms)
