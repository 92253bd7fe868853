"""LaTeX from arXiv titles and abstracts becomes readable text, and nothing breaks on odd input."""

from __future__ import annotations

import time

import pytest

from newsletter.render import latex
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
        (r"a {\em certain} {\it fixed} {\bf bold} {\emph word} b", "a certain fixed bold word b"),
        (r"e.g.\ via, i.e.\ the", "e.g. via, i.e. the"),
        (r"show that \methodabbr reduces \etc. \vs", "show that methodabbr reduces etc. vs"),
        (r"\unknowncommand{x} and {\it\HB} work", "x and HB work"),
        (r"$\mathscr{L}$, \methodabbr{} and $\unknown$", "L, methodabbr and unknown"),
        (r"PixArt-$α$: fast", "PixArt-α: fast"),
        (r"\(i\hbar\bigl(\partial_E + \tfrac12\,\partial_E\ln w\bigr)\)", "iℏ(∂_E + 1/2 ∂_E ln w)"),
        (r"\(L^2(\mathbb R,\,w\,dE)\), \(\lvert E\rvert\), $10^-3$", "L²(ℝ, w dE), |E|, 10⁻³"),
        (r"less than \38 a month (\$5 off); a \\2", "less than $38 a month ($5 off); a 2"),
        # A dollar is math only as pandoc reads it: prices stay prices.
        (r"costs $5 and $10 more, $1.59/F1 point", "costs $5 and $10 more, $1.59/F1 point"),
        (r"from $5 to $10, $x$ and $$y$$", "from $5 to $10, x and y"),
        (r"a $ 5 $ b, $x$5", "a $ 5 $ b, $x$5"),
        ("plain title, no markup", "plain title, no markup"),
        ("  spaces\n and\tlines  ", "spaces and lines"),
    ],
)
def test_common_latex_is_mapped(source: str, expected: str) -> None:
    assert latex_to_text(source) == expected


@pytest.mark.parametrize(
    ("source", "kept"),
    [
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


def _cpu_seconds(text: str) -> float:
    """The least CPU time of three conversions (CPU time: other processes do not count)."""
    times = []
    for _ in range(3):
        started = time.process_time()
        latex_to_text(text)
        times.append(time.process_time() - started)
    return min(times)


def test_eight_thousand_unclosed_textbf_convert_in_well_under_a_second() -> None:
    hostile = r"\textbf{" * 8000
    started = time.perf_counter()
    assert latex_to_text(hostile) == hostile  # unclosed: shown as written
    assert time.perf_counter() - started < 1.0


PATHOLOGICAL = {
    "unclosed textbf": lambda n: r"\textbf{" * n,
    "nested textbf": lambda n: r"\textbf{" * n + "x" + "}" * n,
    "nested mathbb": lambda n: r"\mathbb{" * n + "R" + "}" * n,
    "nested fractions": lambda n: r"\frac{" * n + "1}{2}" * n,
    "unclosed href": lambda n: r"\href{" * n,
    "unclosed \\(": lambda n: r"\( a " * n,
    "unclosed \\[": lambda n: r"\[ a " * n,
    "unclosed $$": lambda n: "$$ a " + "$ " * n,
    "open braces": lambda n: "{" * n + r"\alpha",
}


@pytest.mark.parametrize("shape", PATHOLOGICAL)
def test_work_grows_linearly_with_the_length_of_hostile_markup(shape: str) -> None:
    make = PATHOLOGICAL[shape]
    small = _cpu_seconds(make(4000))
    assert small < 0.5, f"{shape}: {small:.2f} s for 4,000 repeats"
    large = _cpu_seconds(make(16000))
    # 4× the input: about 4× the time when linear, 16× when quadratic.
    assert large < 10 * max(small, 0.002), f"{shape}: {small:.3f} s → {large:.3f} s"


def test_groups_nested_beyond_the_depth_limit_are_shown_as_written() -> None:
    shallow = r"\textbf{" * latex.MAX_DEPTH + "x" + "}" * latex.MAX_DEPTH
    assert latex_to_text(shallow) == "x"
    deep = r"\textbf{" * (latex.MAX_DEPTH + 3) + "x" + "}" * (latex.MAX_DEPTH + 3)
    assert latex_to_text(deep) == r"\textbf{\textbf{x}}"  # the innermost two, as sent
