"""LaTeX benchmark: our converter on every bundled title and abstract, its growth on hostile
markup, and (when `pylatexenc` is installed) pylatexenc's latex2text on the same texts.

The texts are the demo day (shipped in the package) and, in a checkout, the ranking evaluation
corpus (`tests/fixtures/eval/corpus.jsonl`). pylatexenc is not a dependency: `pip install
pylatexenc` first to compare. Its output is compared after collapsing whitespace, once as the
feeds send the text and once with bare `%`, `&` and `#` escaped (arXiv abstracts are not
LaTeX: a bare `%` would start a comment and drop the rest of the line).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from newsletter.render.latex import latex_to_text
from newsletter.sources import arxiv_rss, huggingface

CORPUS = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "eval" / "corpus.jsonl"
_BARE = re.compile(r"(?<!\\)([%&#])")
_WS = re.compile(r"\s+")


def bundled_texts() -> list[str]:
    """Every title and abstract the project ships: the demo day, and the eval corpus if here."""
    data = resources.files("newsletter.data")
    texts: list[str] = []
    for p in arxiv_rss.parse_feed(data.joinpath("demo_arxiv_rss.xml").read_bytes()).papers:
        texts += [p.title, p.abstract]
    for p in huggingface.parse_daily(
        data.joinpath("demo_hf_daily_papers.json").read_bytes()
    ).papers:
        texts += [p.title, p.abstract]
    if CORPUS.is_file():
        for line in CORPUS.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            texts += [row["title"], row["abstract"]]
    return texts


def _timed(convert: Callable[[str], str], texts: list[str]) -> tuple[list[str], float]:
    started = time.perf_counter()
    out = [convert(t) for t in texts]
    return out, time.perf_counter() - started


def _growth() -> None:
    for n in (2_000, 8_000, 32_000):
        hostile = r"\textbf{" * n
        _, seconds = _timed(latex_to_text, [hostile])
        print(f"  {n:>6,} × \\textbf{{ (unclosed): {seconds * 1000:8.1f} ms")


def _compare(texts: list[str], ours: list[str], our_seconds: float) -> None:
    try:
        from pylatexenc.latex2text import LatexNodes2Text
    except ImportError:
        print("  pylatexenc is not installed (pip install pylatexenc) : no comparison")
        return
    converter = LatexNodes2Text(math_mode="text")

    def theirs(text: str) -> str:
        return _WS.sub(" ", converter.latex_to_text(text)).strip()

    def escaped(text: str) -> str:
        return theirs(_BARE.sub(r"\\\1", text))

    for label, convert in (("as sent", theirs), ("%, &, # escaped", escaped)):
        out, seconds = _timed(convert, texts)
        differ = sum(1 for a, b in zip(ours, out, strict=True) if a != b)
        print(
            f"  pylatexenc ({label}): {seconds:7.2f} s ({seconds / our_seconds:,.0f}× ours); "
            f"output differs from ours on {differ:,} of {len(texts):,} texts"
        )


def run() -> None:
    texts = bundled_texts()
    ours, seconds = _timed(latex_to_text, texts)
    print(f"  {len(texts):,} bundled titles and abstracts ({sum(map(len, texts)):,} characters)")
    print(f"  ours: {seconds * 1000:7.1f} ms ({seconds / len(texts) * 1e6:,.0f} µs per text)")
    _growth()
    _compare(texts, ours, seconds)
