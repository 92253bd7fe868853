"""Put back the LaTeX the evaluation corpus lost, before its abstracts become the demo's data.

The corpus's abstracts came through Hugging Face, which strips backslashes and dollars: `41\\times`
arrived as `41times`, `$\\varepsilon>0$` as `varepsilon>0`, `\\$0.12` as `\\0.12`. The rules
below restore a backslash only where the glued name cannot be prose (after a digit, before `_`,
`(` or `{`); what no rule can tell apart is in REPAIRS, by paper, as (as found, as written).
`repaired` checks each of those is still found, so the table cannot silently go stale.
"""

from __future__ import annotations

import re
from typing import Any

# Names that are never English words: a backslash was lost wherever they stand alone.
_ALWAYS = r"mathcal|mathbb|varepsilon|ldots|cdot|infty|leq|geq|sqrt"
_GREEK = (
    r"alpha|beta|gamma|delta|epsilon|zeta|theta|lambda|mu|sigma|tau|phi|psi|omega|pi"
    r"|Gamma|Delta|Theta|Lambda|Sigma|Phi|Omega"
)
_RULES = (
    (re.compile(rf"(?<![\\A-Za-z])({_ALWAYS})(?![a-z])"), r"\\\1"),
    # A Greek name in a formula: after a digit or an operator, or before a sub/superscript.
    (re.compile(rf"(?<=[\d(_^{{|+\-/])({_GREEK})(?![A-Za-z])"), r"\\\1"),
    (re.compile(rf"(?<![\\A-Za-z])({_GREEK})(?=[_^{{(]|\s?(?:[<>=]|leq|geq))"), r"\\\1"),
    # 41times, 512times512, 8times7B, sim16times, approx60%.
    (re.compile(r"(?<=[\dA-Za-z])times(?=\d)|(?<=\d)times(?![a-z])"), r"\\times "),
    (re.compile(r"(?<![\\A-Za-z])(sim|approx)(?=\s?\d)(?!2real)"), r"\\\1 "),
)

REPAIRS: dict[str, tuple[tuple[str, str], ...]] = {
    "p050": (("ratio (\\0.12/F1", "ratio (\\$0.12/F1"),),
    "p084": (("show that \\methodabbr significantly", "show that it significantly"),),
    "p284": (("only \\1,890 economical", "only \\$1,890 economical"),),
    "p287": (
        ("nearly \\300,000 (26,000 vs. \\320,000)", "nearly \\$300,000 (\\$26,000 vs. \\$320,000)"),
        ("PIXART-\\alpha$ will", "PIXART-$\\alpha$ will"),
    ),
    "p317": (("translation, \\etc. However", "translation, etc. However"),),
    "p335": (("big(K+min{|mathcal{S|,d}big)T}", "(K+\\min(|\\mathcal{S}|,d))\\sqrt{T}"),),
    "p344": (
        ("named \\Algo exploits", "named HoloBeam, exploits"),
        ("\\it\\HB}", "\\it HoloBeam}"),
    ),
    "p384": (("E[tau]", "E[\\tau]"),),
    "p419": (
        ("mathcal{O}left(Kright)", "\\mathcal{O}(\\sqrt{K})"),
        ("mathcal{O}left(K^{3{4}} right)", "\\mathcal{O}(K^{3/4})"),
        (
            "mathcal{O}left(K^{4{5}}+polyleft(1{lambda_{min}}right) right)",
            "\\mathcal{O}(K^{4/5}+\\mathrm{poly}(1/\\lambda_{\\min}))",
        ),
        ("constant lambda_{min}", "constant $\\lambda_{\\min}$"),
        ("mathcal{O}left(K^{6{7}} right)", "\\mathcal{O}(K^{6/7})"),
    ),
    "p421": (("varepsilond", "\\varepsilon d"), ("deltageq", "\\delta\\geq")),
    "p444": (
        (
            "\\textbf{Positional \\textbf{Integrity Encoding} (PIE)",
            "Positional Integrity Encoding (PIE)",
        ),
    ),
    "p491": (("theta_nin[0, 2pi)", "\\theta_n \\in [0, 2\\pi)"), (";mod ;", " mod ")),
    "p518": (("bitrate \\vs distortion", "bitrate vs. distortion"),),
    "p583": (
        ("N(0, 1{nmathcal I})", "N(0, 1/(n\\mathcal{I}))"),
        ("mathcal I", "\\mathcal{I}"),
        ("n to infty, r to 0", "n \\to \\infty, r \\to 0"),
    ),
    "p588": (("Obig(dsum_{t=1^Tsigma_t^2} + dbig)", "O(d\\sqrt{\\sum_{t=1}^T\\sigma_t^2} + d)"),),
    "p501": (("alphain[", "\\alpha \\in ["),),
    "p015": (("deltain(0,1)", "\\delta \\in (0,1)"),),
    "p183": (("{g(1),g(2),ldots,g(J)}", "g(1), g(2), \\ldots, g(J)"),),
}


def repaired(paper: dict[str, Any]) -> dict[str, Any]:
    """A corpus paper (with `id`, `title`, `abstract`) with its lost LaTeX put back."""
    title, abstract = paper["title"], paper["abstract"]
    for found, written in REPAIRS.get(paper["id"], ()):
        if found not in title and found not in abstract:
            raise ValueError(f"{paper['id']}: the repair for {found!r} no longer finds it")
        title, abstract = title.replace(found, written), abstract.replace(found, written)
    for rule, replacement in _RULES:
        title, abstract = rule.sub(replacement, title), rule.sub(replacement, abstract)
    return {**paper, "title": title, "abstract": abstract}
