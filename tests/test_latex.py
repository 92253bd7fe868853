"""LaTeX from arXiv titles and abstracts becomes readable text, and nothing breaks on odd input."""

from __future__ import annotations

import pytest

from newsletter.render.latex import latex_to_text


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (r"$\alpha$-divergence", "α-divergence"),
        (r"\textbf{Bold} and \emph{emphasis}", "Bold and emphasis"),
        (r"x^{2} and $O(n^2)$ and $x_i$", "x² and O(n²) and xᵢ"),
        (r"A$^2$ATS: KV cache", "A²ATS: KV cache"),
        (r"$\mathbb{R}^{d}$ and $\mathcal{O}(n \log n)$", "ℝ^d and 𝒪(n log n)"),
        (r"$\frac{1}{2}$ of $\sqrt{d}$", "1/2 of √d"),
        (r"$\leq 3$, $\geq$, $\to$, $\times$, $\infty$", "≤ 3, ≥, →, ×, ∞"),
        (r"Schr\"odinger and Fran\c{c}ois", "Schrödinger and François"),
        (r"costs \$5, 10\% more \& Fig.~3", "costs $5, 10% more & Fig. 3"),
        (r"a --- b -- c ``q''", "a — b – c “q”"),
        (r"\emph{LLM}s \cite{smith2020} \href{https://x.org}{here}", "LLMs here (https://x.org)"),
        (r"$W_{\text{out}}$", "Wₒᵤₜ"),
        ("plain title, no markup", "plain title, no markup"),
        ("  spaces\n and\tlines  ", "spaces and lines"),
    ],
)
def test_common_latex_is_mapped(source: str, expected: str) -> None:
    assert latex_to_text(source) == expected


@pytest.mark.parametrize(
    ("source", "kept"),
    [
        (r"\unknowncommand{x} stays", r"\unknowncommand{x} stays"),
        (r"unbalanced {brace and $dollar", "unbalanced {brace and $dollar"),
        ("{" * 5000, "{" * 100),
        (r"$e^{-x^2}$", "e^(-x^2)"),
        ("<script>alert(1)</script>", "<script>alert(1)</script>"),
        ("https://example.org/~user/page", "https://example.org/~user/page"),
    ],
)
def test_what_cannot_be_mapped_stays_as_text(source: str, kept: str) -> None:
    assert kept in latex_to_text(source)


def test_never_raises_on_garbage() -> None:
    for junk in ["\\", "$", "$$", "^", "_{", "\\frac{", "\\sqrt", "\\href{x}", "}}}{{{", "\x00"]:
        assert isinstance(latex_to_text(junk), str)
