"""The optional semantic extra: rank fusion, its wiring into `rank`, and local-only loading."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import pytest

from newsletter.errors import ConfigError
from newsletter.models import Paper
from newsletter.ranking.profile import Profile
from newsletter.ranking.rank import rank
from newsletter.ranking.semantic import fuse_ranks, load_encoder

HAS_ST = importlib.util.find_spec("sentence_transformers") is not None


def test_fusion_keeps_the_lexical_scale_and_follows_both_rankings():
    lexical = np.array([[0.9, 0.5, 0.4, 0.0]], dtype=np.float32)
    semantic = np.array([[0.1, 0.2, 0.95, 0.9]], dtype=np.float32)
    fused = fuse_ranks(lexical, semantic)[0]
    # RRF order: 2 (3rd + 1st), 0 (1st + 4th), 1 (2nd + 3rd), 3 (4th + 2nd) ...
    assert np.argsort(-fused).tolist() == [2, 0, 1, 3]
    # ... scored on the lexical scale: max(r-th lexical, r-th semantic x best lexical).
    assert fused.tolist() == pytest.approx([0.81, 0.4, 0.9, 0.09])


class SynonymEncoder:
    """A stand-in embedding model (the real one is a download): words map to concepts."""

    CONCEPTS: ClassVar[dict[str, int]] = {
        "speech": 0,
        "voice": 0,
        "spoken": 0,
        "vision": 1,
        "image": 1,
        "pixel": 1,
    }

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.full((len(texts), 3), 1e-3, dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"[a-z]+", text.lower()):
                out[i, self.CONCEPTS.get(word, 2)] += 1.0 if word in self.CONCEPTS else 0.01
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_semantic_encoder_lifts_a_paper_that_uses_other_words():
    filler = "We study models and report results on several benchmarks with careful ablations."
    papers = [
        Paper(id="a", title="Voice cloning with spoken prompts", abstract=filler),
        Paper(id="b", title="Pixel transformers for images", abstract=filler),
        Paper(id="c", title="Speech benchmarks", abstract="speech " + filler),
        *[Paper(id=f"z{i}", title=f"Graph method {i}", abstract=filler) for i in range(20)],
    ]
    profile = Profile(key="p", queries=(("speech", 1.0),), size=3)
    lexical = [p.paper.id for p in rank(papers, [profile])[0].picks]
    fused = [p.paper.id for p in rank(papers, [profile], encoder=SynonymEncoder())[0].picks]
    assert lexical[0] == "c" and "a" not in lexical
    assert set(fused[:2]) == {"a", "c"}  # the voice paper joins the speech one


def test_no_model_configured_means_no_encoder():
    assert load_encoder("") is None


@pytest.mark.skipif(HAS_ST, reason="sentence-transformers is installed")
def test_configured_model_without_the_extra_says_how_to_install_it():
    with pytest.raises(ConfigError, match=r"pip install 'newsletter\[semantic\]'"):
        load_encoder("sentence-transformers/all-MiniLM-L6-v2")


@pytest.mark.skipif(not HAS_ST, reason="needs the [semantic] extra (sentence-transformers)")
def test_a_model_that_is_not_on_disk_is_refused_without_downloading(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache
    with pytest.raises(ConfigError, match="could not be loaded from a local path"):
        load_encoder("newsletter-test/no-such-model")
