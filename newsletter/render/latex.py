"""Make the LaTeX found in arXiv titles and abstracts readable as plain Unicode text.

`$\\alpha$` → α, `\\textbf{x}` → x, `x^{2}` → x², `\\mathbb{R}` → ℝ. What cannot be mapped is
left as text (never raised on, never dropped), so a paper with odd markup still reads.
The result is plain text: escaping for HTML is the template's job.
"""

from __future__ import annotations

import re
import unicodedata

GREEK = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "varepsilon": "ε",
    "zeta": "ζ", "eta": "η", "theta": "θ", "vartheta": "ϑ", "iota": "ι", "kappa": "κ",
    "lambda": "λ", "mu": "μ", "nu": "ν", "xi": "ξ", "pi": "π", "varpi": "ϖ", "rho": "ρ",
    "varrho": "ϱ", "sigma": "σ", "varsigma": "ς", "tau": "τ", "upsilon": "υ", "phi": "φ",
    "varphi": "φ", "chi": "χ", "psi": "ψ", "omega": "ω", "Gamma": "Γ", "Delta": "Δ",
    "Theta": "Θ", "Lambda": "Λ", "Xi": "Ξ", "Pi": "Π", "Sigma": "Σ", "Upsilon": "Υ",
    "Phi": "Φ", "Psi": "Ψ", "Omega": "Ω",
}  # fmt: skip

SYMBOLS = {
    "times": "×", "cdot": "·", "cdots": "⋯", "ldots": "…", "dots": "…", "pm": "±", "mp": "∓",
    "div": "÷", "leq": "≤", "le": "≤", "geq": "≥", "ge": "≥", "neq": "≠", "ne": "≠",
    "approx": "≈", "sim": "∼", "simeq": "≃", "equiv": "≡", "propto": "∝", "ll": "≪", "gg": "≫",
    "infty": "∞", "partial": "∂", "nabla": "∇", "sum": "∑", "prod": "∏", "int": "∫",
    "oint": "∮", "sqrt": "√", "in": "∈", "notin": "∉", "subset": "⊂", "subseteq": "⊆",
    "supset": "⊃", "supseteq": "⊇", "cup": "∪", "cap": "∩", "emptyset": "∅",
    "varnothing": "∅", "forall": "∀", "exists": "∃", "neg": "¬", "lnot": "¬", "wedge": "∧",
    "land": "∧", "vee": "∨", "lor": "∨", "oplus": "⊕", "otimes": "⊗", "circ": "∘",
    "to": "→", "rightarrow": "→", "leftarrow": "←", "gets": "←", "leftrightarrow": "↔",
    "Rightarrow": "⇒", "Leftarrow": "⇐", "Leftrightarrow": "⇔", "implies": "⇒", "iff": "⇔",
    "mapsto": "↦", "uparrow": "↑", "downarrow": "↓", "ell": "ℓ", "hbar": "ℏ", "Re": "ℜ",
    "Im": "ℑ", "aleph": "ℵ", "star": "⋆", "ast": "∗", "dagger": "†", "prime": "′",
    "langle": "⟨", "rangle": "⟩", "lceil": "⌈", "rceil": "⌉", "lfloor": "⌊", "rfloor": "⌋",
    "top": "⊤", "bot": "⊥", "perp": "⊥", "parallel": "∥", "mid": "∣", "angle": "∠",
    "degree": "°", "checkmark": "✓", "textasciitilde": "~", "textbackslash": "\\",
    "S": "§", "P": "¶", "copyright": "©", "dag": "†", "ddag": "‡", "textbullet": "•",
    "textendash": "–", "textemdash": "—", "quad": " ", "qquad": "  ", "colon": ":",
    "log": "log", "ln": "ln", "exp": "exp", "sin": "sin", "cos": "cos", "tan": "tan",
    "max": "max", "min": "min", "arg": "arg", "argmax": "argmax", "argmin": "argmin",
    "lim": "lim", "sup": "sup", "inf": "inf", "det": "det", "dim": "dim", "ker": "ker",
    "Pr": "Pr", "LaTeX": "LaTeX", "TeX": "TeX", "left": "", "right": "", "big": "",
    "Big": "", "bigg": "", "Bigg": "", "displaystyle": "", "textstyle": "", "noindent": "",
    "newline": " ", "linebreak": " ", "smallskip": "", "medskip": "", "bigskip": "",
}  # fmt: skip

# Commands whose one argument is shown as it is (formatting only).
UNWRAP = {
    "textbf", "textit", "textrm", "textsf", "texttt", "textsc", "textup", "textnormal", "emph",
    "underline", "mathrm", "mathbf", "mathit", "mathsf", "mathtt", "mathnormal", "boldsymbol",
    "bm", "text", "mbox", "operatorname", "hbox", "textmd", "mathop", "overline", "widetilde",
    "widehat", "tilde", "hat", "bar", "vec", "dot", "ddot", "url", "footnote", "textsuperscript",
}  # fmt: skip

# Commands whose arguments are not worth showing in an e-mail.
DROP = {"cite", "citep", "citet", "ref", "eqref", "label", "vspace", "hspace", "footnotemark"}

# Commands with two arguments: fractions (num, den) and links (url, label).
_TWO_ARGS = {"frac", "dfrac", "tfrac", "href"}

ALPHABETS = {
    "mathbb": {
        "R": "ℝ", "N": "ℕ", "Z": "ℤ", "Q": "ℚ", "C": "ℂ", "P": "ℙ", "E": "𝔼", "1": "𝟙",
    },
    "mathcal": {
        "O": "𝒪", "L": "ℒ", "N": "𝒩", "D": "𝒟", "X": "𝒳", "Y": "𝒴", "F": "ℱ", "H": "ℋ",
        "M": "ℳ", "P": "𝒫", "S": "𝒮", "T": "𝒯", "A": "𝒜", "B": "ℬ", "C": "𝒞", "G": "𝒢",
    },
}  # fmt: skip

SUPERSCRIPT = dict(zip("0123456789+-=()nixT*", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿⁱˣᵀ*", strict=True))
SUBSCRIPT = dict(
    zip("0123456789+-=()aeoxijklmnprstuv", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑₒₓᵢⱼₖₗₘₙₚᵣₛₜᵤᵥ", strict=True)
)
ACCENTS = {"'": "\u0301", "`": "\u0300", '"': "\u0308", "^": "\u0302", "~": "\u0303"}
ACCENTS["c"] = "\u0327"

_COMMAND = re.compile(r"\\([A-Za-z]+)\*?")
_ESCAPED = re.compile(r"\\([%&_#$${}])")
_ACCENT = re.compile(r"\\([`'\"^~])\s*\{?([A-Za-z])\}?|\\(c)\{([A-Za-z])\}")
_SCRIPT = re.compile(r"([\^_])(\{([^{}]*)\}|\\?[A-Za-z0-9+\-*]+)")
_BRACED_SCRIPT = re.compile(r"([\^_])\{([^{}]*)\}")
_MATH = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]", re.DOTALL)
_SPACES = re.compile(r"[ \t\r\n]+")


def _group(text: str, start: int) -> tuple[str, int] | None:
    """The balanced {...} group starting at text[start] (after spaces): (inner, end)."""
    i = start
    while i < len(text) and text[i] == " ":
        i += 1
    if i >= len(text) or text[i] != "{":
        return None
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j], j + 1
    return None


def _script(marker: str, body: str) -> str:
    table = SUPERSCRIPT if marker == "^" else SUBSCRIPT
    if body and all(ch in table for ch in body):
        return "".join(table[ch] for ch in body)
    if len(body) == 1:
        return marker + body
    return f"{marker}({body})"


def _commands(text: str) -> str:
    """Replace \\commands left to right; unknown commands stay as written."""
    out: list[str] = []
    pos = 0
    for _ in range(10_000):  # bounded: each step consumes input
        m = _COMMAND.search(text, pos)
        if m is None:
            break
        out.append(text[pos : m.start()])
        replacement, pos = _command(text, m)
        out.append(replacement)
    out.append(text[pos:])
    return "".join(out)


def _command(text: str, m: re.Match[str]) -> tuple[str, int]:
    """What the command matched by `m` reads as, and where the text after its arguments starts."""
    name, pos = m.group(1), m.end()
    if name in _TWO_ARGS:
        first = _group(text, pos)
        second = _group(text, first[1]) if first is not None else None
        if first is not None and second is not None:
            if name == "href":  # \href{url}{label}
                return f"{_commands(second[0])} ({first[0]})", second[1]
            return f"{_paren(_commands(first[0]))}/{_paren(_commands(second[0]))}", second[1]
        if name != "href":  # a fraction without its two groups stays as written
            return m.group(0), pos
    arg = _group(text, pos)
    if arg is not None:
        body, end = arg
        if name in ALPHABETS:
            return "".join(ALPHABETS[name].get(ch, ch) for ch in _commands(body)), end
        if name == "sqrt":
            return "√" + _paren(_commands(body)), end
        if name in UNWRAP:
            return _commands(body), end
        if name in DROP:
            return "", end
    if name in GREEK:
        return GREEK[name], pos
    return SYMBOLS.get(name, m.group(0)), pos


def _paren(s: str) -> str:
    s = s.strip()
    return s if len(s) <= 1 or s.isalnum() else f"({s})"


def _math(body: str) -> str:
    body = _commands(body)
    body = _SCRIPT.sub(lambda m: _script(m.group(1), m.group(3) or m.group(2)), body)
    return body.replace("{", "").replace("}", "")


def latex_to_text(text: str) -> str:
    """Readable Unicode for LaTeX-ish text from a feed; never raises, never loses plain text."""
    if not text or ("\\" not in text and "$" not in text and "{" not in text and "--" not in text):
        return _SPACES.sub(" ", text or "").strip()
    try:
        return _convert(text)
    except RecursionError:  # absurdly deep braces: show the source rather than fail
        return _SPACES.sub(" ", text).strip()


def _convert(text: str) -> str:
    text = text.replace("\\$", "\x00")  # a literal dollar is not a math delimiter
    text = _ACCENT.sub(lambda m: (m.group(2) or m.group(4)) + ACCENTS[m.group(1) or "c"], text)

    def math(m: re.Match[str]) -> str:
        body = next(g for g in m.groups() if g is not None)
        return _math(body)

    text = _MATH.sub(math, text)
    text = _commands(text)
    text = _BRACED_SCRIPT.sub(lambda m: _script(m.group(1), m.group(2)), text)
    text = _ESCAPED.sub(r"\1", text).replace("\\\\", " ")
    text = text.replace("---", "—").replace("--", "–").replace("``", "“").replace("''", "”")
    text = re.sub(r"(?<![/\\])~", " ", text)  # ~ is a non-breaking space (kept in URLs)
    text = re.sub(r"(?<![\\A-Za-z])\{([^{}$\\]*)\}", r"\1", text)  # stray grouping braces
    text = unicodedata.normalize("NFC", text.replace("\x00", "$"))  # o + ̈ → ö
    return _SPACES.sub(" ", text).strip()
