"""Optional semantic relevance (`pip install 'newsletter[semantic]'`), fused by rank.

A sentence-transformers model, named by `digest.semantic_model` (a local folder or a model
already in the user's Hugging Face cache: nothing is downloaded), embeds papers and
interests. Its ranking is combined with the lexical one by reciprocal-rank fusion; the fused
order keeps the lexical score scale, so thresholds and the trending blend mean the same.
Nothing here runs unless `digest.semantic_model` is set.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from newsletter.errors import ConfigError

RRF_K = 60.0


class Encoder(Protocol):
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length embeddings, one row per text."""
        ...

    def __hash__(self) -> int:  # the ranker caches a day's index per (papers, encoder)
        ...


class SentenceEncoder:
    """A sentence-transformers model loaded from local files only."""

    def __init__(self, model: object) -> None:
        self.model = model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self.model.encode(  # type: ignore[attr-defined]
            list(texts), batch_size=64, normalize_embeddings=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)


@functools.lru_cache(maxsize=2)
def load_encoder(model_name: str) -> SentenceEncoder | None:
    """The configured model, or None when `digest.semantic_model` is empty."""
    if not model_name:
        return None
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never download at send time
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise ConfigError(
            "digest.semantic_model is set but sentence-transformers is not installed: "
            "pip install 'newsletter[semantic]', or empty digest.semantic_model"
        ) from None
    try:
        model = SentenceTransformer(model_name, local_files_only=True)
    except Exception as exc:  # the library raises OSError, ValueError, HF errors...
        raise ConfigError(
            f"digest.semantic_model {model_name!r} could not be loaded from a local path or "
            f"the Hugging Face cache ({exc.__class__.__name__}: {exc}). Download it once "
            "where you have internet, or point the setting at a local model folder."
        ) from None
    return SentenceEncoder(model)


def _ranks(scores: np.ndarray) -> np.ndarray:
    order = np.argsort(-scores, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(scores.shape[1])[None, :], axis=1)
    return ranks


def fuse_ranks(lexical: np.ndarray, semantic: np.ndarray) -> np.ndarray:
    """Reciprocal-rank fusion of two score matrices (rows: queries, columns: papers).

    The paper fused into place r gets the larger of the r-th best lexical score and the r-th
    best semantic similarity scaled to the row's best lexical score: the order is the fused
    one, and the scale stays the lexical one (so thresholds and the trending blend hold),
    while a paper found only by meaning can still clear the relevance threshold.
    """
    fused = 1.0 / (RRF_K + 1 + _ranks(lexical)) + 1.0 / (RRF_K + 1 + _ranks(semantic))
    order = np.argsort(-fused, axis=1, kind="stable")
    lex = -np.sort(-lexical, axis=1)
    sem = -np.sort(-np.clip(semantic, 0.0, 1.0), axis=1) * lex[:, :1]
    out = np.empty_like(lexical)
    np.put_along_axis(out, order, np.maximum(lex, sem).astype(lexical.dtype), axis=1)
    return out
