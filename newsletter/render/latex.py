"""Make the LaTeX found in arXiv titles and abstracts readable as plain Unicode text.

`$\\alpha$` → α, `\\textbf{x}` → x, `x^{2}` → x², `\\mathbb{R}` → ℝ. What cannot be mapped is
left as text (never raised on, never dropped), so a paper with odd markup still reads: a
command nobody defined shows its argument (`\\textsl{x}`: most are formatting) or, with none,
its name without the backslash (`\\methodabbr`, an author's macro).
A dollar opens math only as pandoc reads it: `$x$`, with no space inside either dollar and no
digit right after the closing one, so prices (`$5 and $10`, `$1.59/F1 point`) stay prices.
The result is plain text: escaping for HTML is the template's job. The work is linear in the
length of the text whatever it holds (unclosed groups, deep nesting), since a feed can send
anything and digests are rendered while the send lock is held.
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
    "Big": "", "bigg": "", "Bigg": "", "bigl": "", "bigr": "", "Bigl": "", "Bigr": "",
    "biggl": "", "biggr": "", "lvert": "|", "rvert": "|", "vert": "|", "lVert": "‖",
    "rVert": "‖", "Vert": "‖", "displaystyle": "", "textstyle": "", "noindent": "",
    "newline": " ", "linebreak": " ", "smallskip": "", "medskip": "", "bigskip": "",
    "em": "", "it": "", "bf": "", "rm": "", "sl": "", "sf": "", "tt": "", "sc": "",
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

_ALPHABET_LETTERS = {name: re.compile(f"[{''.join(t)}]") for name, t in ALPHABETS.items()}
MAX_DEPTH = 32  # groups nested deeper than this are shown as written (bounded work)

_COMMAND = re.compile(r"\\([A-Za-z]+)\*?")
_ESCAPED = re.compile(r"\\([%&_#$${}])")
_ACCENT = re.compile(r"\\([`'\"^~])\s*\{?([A-Za-z])\}?|\\(c)\{([A-Za-z])\}")
# Unbraced, a script is one character as TeX reads it (`\\partial_E\\ln` is ∂_E ln), or a
# signed number (`n^-1`, `10^-3`: what text that lost its braces meant).
_SCRIPT = re.compile(r"([\^_])(\{([^{}]*)\}|[+\-]?\d+|\\?[A-Za-z*])")
_BRACED_SCRIPT = re.compile(r"([\^_])\{([^{}]*)\}")
_MATH_OPENER = re.compile(r"\$|\\[(\[]")
_OPENERS = {"lvert", "lVert", "langle", "lceil", "lfloor"}
# Commands that are ours to read even when their arguments are missing: shown as written then.
_KNOWN = UNWRAP | DROP | _TWO_ARGS | set(ALPHABETS) | {"sqrt"}
_BRACE = re.compile(r"[{}]")
_SHORT_FRACTION = re.compile(r" *([A-Za-z0-9]) *([A-Za-z0-9])(?![A-Za-z0-9])")
_TOKEN = re.compile(r" *([A-Za-z0-9])(?![A-Za-z0-9])")
_SPACES = re.compile(r"[ \t\r\n]+")


def _script(marker: str, body: str) -> str:
    table = SUPERSCRIPT if marker == "^" else SUBSCRIPT
    if body and all(ch in table for ch in body):
        return "".join(table[ch] for ch in body)
    if len(body) == 1:
        return marker + body
    return f"{marker}({body})"


def _match_braces(text: str) -> dict[int, int]:
    """Each `{` that is closed, mapped to its `}`: one pass, so no group is scanned twice."""
    close: dict[int, int] = {}
    opened: list[int] = []
    for m in _BRACE.finditer(text):
        if m.group() == "{":
            opened.append(m.start())
        elif opened:
            close[opened.pop()] = m.start()
    return close


class _Commands:
    """Replaces \\commands left to right in one text; unknown commands stay as written.

    Work is linear in the text: braces are matched once up front (finding a group's end costs
    nothing), and groups nested deeper than MAX_DEPTH are shown as written, so no character is
    read more than MAX_DEPTH times however the braces are arranged.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.close = _match_braces(text)

    def convert(self, lo: int, hi: int, depth: int, out: list[str]) -> None:
        """Append text[lo:hi], converted, to `out`."""
        text, pos = self.text, lo
        if depth > MAX_DEPTH:
            out.append(text[lo:hi])
            return
        while (m := _COMMAND.search(text, pos, hi)) is not None:
            out.append(text[pos : m.start()])
            pos = self.command(m, hi, depth, out)
        out.append(text[pos:hi])

    def converted(self, group: tuple[int, int], depth: int) -> str:
        out: list[str] = []
        self.convert(group[0], group[1], depth + 1, out)
        return "".join(out)

    def group(self, start: int, hi: int) -> tuple[int, int] | None:
        """The inside (start, end) of the {...} group at text[start] (after spaces), if closed."""
        text, i = self.text, start
        while i < hi and text[i] == " ":
            i += 1
        end = self.close.get(i, hi) if i < hi and text[i] == "{" else hi
        return (i + 1, end) if end < hi else None

    def command(self, m: re.Match[str], hi: int, depth: int, out: list[str]) -> int:
        """Append what the command matched by `m` reads as; return where the text after its
        arguments starts."""
        name, pos = m.group(1), m.end()
        if name in _TWO_ARGS and (end := self.two_args(m, hi, depth, out)) is not None:
            return end
        arg = self.group(pos, hi)
        if arg is not None and (end := self.one_arg(name, arg, depth, out)) is not None:
            return end
        if arg is None and name in UNWRAP and not self.text.startswith("{", pos):
            return pos  # used as a switch, "{\\emph word}": the word is what shows
        if (name in ALPHABETS or name == "sqrt") and (token := _TOKEN.match(self.text, pos, hi)):
            letter = token.group(1)  # "\\mathcal O", "\\sqrt T": one character is the argument
            out.append("√" + letter if name == "sqrt" else ALPHABETS[name].get(letter, letter))
            return token.end()
        return self.bare(m, hi, out)

    def two_args(self, m: re.Match[str], hi: int, depth: int, out: list[str]) -> int | None:
        """A fraction or a link; None for a link without its two groups."""
        name, pos = m.group(1), m.end()
        first = self.group(pos, hi)
        second = self.group(first[1] + 1, hi) if first is not None else None
        if first is not None and second is not None:
            if name == "href":  # \\href{url}{label}
                url = self.text[first[0] : first[1]]
                out.append(f"{self.converted(second, depth)} ({url})")
            else:
                top, bottom = self.converted(first, depth), self.converted(second, depth)
                out.append(f"{_paren(top)}/{_paren(bottom)}")
            return second[1] + 1
        if name == "href":
            return None
        short = _SHORT_FRACTION.match(self.text, pos, hi)  # "\\tfrac12" is 1/2
        out.append(f"{short.group(1)}/{short.group(2)}" if short else m.group(0))
        return short.end() if short else pos  # other fractions without groups stay

    def one_arg(self, name: str, arg: tuple[int, int], depth: int, out: list[str]) -> int | None:
        """A command with its {argument}; None when the argument is not the command's."""
        end = arg[1] + 1
        unknown = name not in _KNOWN and name not in SYMBOLS and name not in GREEK
        if name in ALPHABETS:
            letters = ALPHABETS[name]
            body = self.converted(arg, depth)
            out.append(_ALPHABET_LETTERS[name].sub(lambda c: letters[c.group()], body))
        elif name == "sqrt":
            out.append("√" + _paren(self.converted(arg, depth)))
        elif name in UNWRAP or (unknown and arg[1] > arg[0]):
            self.convert(arg[0], arg[1], depth + 1, out)  # unknown: formatting, most likely
        elif unknown:
            out.append(name)  # \\methodabbr{}: an author's macro, named
        elif name not in DROP:
            return None
        return end

    def bare(self, m: re.Match[str], hi: int, out: list[str]) -> int:
        """A command read without arguments: a symbol, a letter, or its name."""
        name, pos = m.group(1), m.end()
        known = GREEK.get(name) or SYMBOLS.get(name)
        if known is None:
            out.append(m.group(0) if name in _KNOWN else name)
            return pos
        if known.isalpha() and len(known) > 1 and out and out[-1][-1:].isalnum():
            known = " " + known  # "\\partial_E\\ln w" reads "∂_E ln w", not "∂_Eln w"
        out.append(known)
        if name in _OPENERS:  # "\\lvert E\\rvert" reads "|E|"
            while pos < hi and self.text[pos] == " ":
                pos += 1
        return pos


def _commands(text: str) -> str:
    out: list[str] = []
    _Commands(text).convert(0, len(text), 0, out)
    return "".join(out)


def _paren(s: str) -> str:
    s = s.strip()
    return s if len(s) <= 1 or s.isalnum() else f"({s})"


def _math(body: str) -> str:
    body = _commands(body)
    body = _SCRIPT.sub(lambda m: _script(m.group(1), m.group(3) or m.group(2)), body)
    return body.replace("{", "").replace("}", "")


def _math_spans(text: str) -> str:
    """Convert each $...$, $$...$$, \\(...\\) and \\[...\\] span, leftmost first and shortest.

    An opener with no closer stays as written. Where each closer next occurs is remembered, so
    a text full of unclosed openers is still read once, not once per opener.
    """
    out: list[str] = []
    pos = scan = 0
    seen: dict[str, int] = {}  # closer -> where it next occurs after the last search (-1: never)

    def closer_at(closer: str, start: int) -> int:
        at = seen.get(closer)
        if at is None or start > at >= 0:
            at = seen[closer] = text.find(closer, start)
        return at

    def dollar_opens(p: int, q: int) -> bool:  # the next dollar closes: no spaces inside, no
        inside = not text[p + 1].isspace() and not text[q - 1].isspace()  # digit after it
        return inside and not text[q + 1 : q + 2].isdigit()

    while (m := _MATH_OPENER.search(text, scan)) is not None:
        p, span = m.start(), None
        if text[p] == "$":
            if text.startswith("$$", p) and (q := closer_at("$$", p + 3)) >= 0:
                span = (p + 2, q, q + 2)
            elif (q := closer_at("$", p + 1)) > p + 1 and dollar_opens(p, q):
                span = (p + 1, q, q + 1)
        elif (q := closer_at("\\)" if text[p + 1] == "(" else "\\]", p + 3)) >= 0:
            span = (p + 2, q, q + 2)
        if span is None:
            scan = p + 1
            continue
        out += (text[pos:p], _math(text[span[0] : span[1]]))
        pos = scan = span[2]
    out.append(text[pos:])
    return "".join(out)


_LITERALS = re.compile("[\x00-\x02]")
_LOST_DOLLAR = re.compile(r"(?<!\\)\\(?=\d)")  # no LaTeX command starts with a digit
_SPACING = re.compile(r"\\[ ,;:!]")  # control space, thin, medium, thick, negative space


def _literal(m: re.Match[str]) -> str:
    return "${}"[ord(m.group())]


def latex_to_text(text: str) -> str:
    """Readable Unicode for LaTeX-ish text from a feed; never raises, never loses plain text.

    Linear in the length of `text`, whatever its markup (a feed could send anything).
    """
    if not text or ("\\" not in text and "$" not in text and "{" not in text and "--" not in text):
        return _SPACES.sub(" ", text or "").strip()
    # Literal dollars and braces are no delimiters (and braces survive math).
    text = text.replace("\\$", "\x00").replace("\\{", "\x01").replace("\\}", "\x02")
    text = _LOST_DOLLAR.sub("\x00", text)  # "\\38": a price whose dollar a site stripped
    text = _ACCENT.sub(lambda m: (m.group(2) or m.group(4)) + ACCENTS[m.group(1) or "c"], text)
    text = _commands(_math_spans(text))
    text = _BRACED_SCRIPT.sub(lambda m: _script(m.group(1), m.group(2)), text)
    text = _ESCAPED.sub(r"\1", text).replace("\\\\", " ")
    text = _SPACING.sub(lambda m: "" if m.group() == "\\!" else " ", text)
    text = text.replace("---", "—").replace("--", "–").replace("``", "“").replace("''", "”")
    text = re.sub(r"(?<![/\\])~", " ", text)  # ~ is a non-breaking space (kept in URLs)
    text = re.sub(r"(?<![\\A-Za-z])\{([^{}$\\]*)\}", r"\1", text)  # stray grouping braces
    text = unicodedata.normalize("NFC", _LITERALS.sub(_literal, text))  # o + ̈ → ö
    return _SPACES.sub(" ", text).strip()
