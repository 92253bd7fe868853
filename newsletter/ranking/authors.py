"""Followed authors: names normalised so "Y. LeCun", "LeCun, Yann" and "Yann Le Cun" meet.

A name is reduced to its surname (accents folded, case, spaces and hyphens removed) and its
first given name, in full ("Yu-Lin" -> "yulin") or as initials ("Y.-L." -> "yl"). A
surname with particles ("van der Maaten", "Le Cun", "Van Nguyen") is known both with and
without them, and one with an umlaut both ways it is spelt ("Schölkopf", "Schoelkopf"). A
follow matches a paper's author when a surname agrees and the given names agree as far as
both are known: "Yann LeCun" matches "Yann LeCun" and "Y. LeCun", not "Yves LeCun";
"Yu-Lin Chen" matches "Yulin Chen" and "Y.-L. Chen", not "Yu-Wei Chen"; a follow typed with
an initial ("Y. LeCun") matches every LeCun whose first name starts with Y.

Matching is one sparse product per batch: each paper author becomes a few keys, each follow
the keys it accepts, and only subscribers who follow someone get a row.
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from newsletter.models import Paper

PARTICLES = frozenset(
    {"van", "von", "der", "den", "de", "del", "della", "di", "da", "dos", "du", "le", "la"}
    | {"ter", "ten", "bin", "ibn", "al", "el", "st"}
)
_SPLIT = re.compile(r"[\s.]+")
_LETTERS = re.compile(r"[^\w]", re.UNICODE)
_SUFFIXES = frozenset({"jr", "sr", "ii", "iii", "iv"})
_INITIAL_HYPHEN = re.compile(r"\.\s*-\s*")  # "Y.-L." -> "Y-L."
# Letters NFKD does not take apart, and German's second spelling of its umlauts.
_LATIN = str.maketrans(
    {"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "ı": "i"}
    | {"æ": "ae", "Æ": "Ae", "œ": "oe", "Œ": "Oe", "ß": "ss", "þ": "th", "Þ": "Th"}
)
_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"})


@dataclass(frozen=True)
class Name:
    surnames: tuple[str, ...]  # ("lecun",); ("vandermaaten", "maaten"); ("scholkopf", ...)
    givens: tuple[str, ...]  # the first given name: ("yann",), ("yulin",); initials: ("yl",)
    initials: str  # "y", "yl"
    initial_only: bool

    @property
    def keys(self) -> tuple[str, ...]:
        """What a paper author with this name is indexed under."""
        out = []
        for s in self.surnames:
            out.append(f"{s}|{self.initials[:1]}*")
            if len(self.initials) > 1:
                out.append(f"{s}|{self.initials}*")
            if self.initial_only:
                out.append(f"{s}|.{self.initials}")
            else:
                out += [f"{s}|={g}" for g in self.givens]
        return tuple(dict.fromkeys(out))

    @property
    def accepts(self) -> tuple[str, ...]:
        """The keys of the paper authors a follow of this name matches."""
        out = []
        for s in self.surnames:
            if self.initial_only:
                out.append(f"{s}|{self.initials}*")
                continue
            out += [f"{s}|={g}" for g in self.givens]
            out.append(f"{s}|.{self.initials}")  # "Y.-L. Chen" for "Yu-Lin Chen"
            if len(self.initials) > 1:
                out.append(f"{s}|.{self.initials[:1]}")  # "Y. Chen" too
        return tuple(dict.fromkeys(out))


def fold(text: str) -> str:
    """Lower case without accents: 'Ünal' → 'unal', 'Łukasz' → 'lukasz', 'Đặng' → 'dang'."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_LATIN))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _squash(token: str) -> str:
    return _LETTERS.sub("", token).replace("_", "")


def _parts(text: str) -> tuple[list[str], list[str]] | None:
    """A folded name's given-name tokens and surname tokens (particles with the surname)."""
    pieces = [p for p in (x.strip() for x in text.split(",")) if _squash(p)]
    pieces = [p for p in pieces if _squash(p) not in _SUFFIXES] or pieces  # "Smith, Jr."
    if len(pieces) >= 2:  # "LeCun, Yann"; BibTeX's "von Last, Jr, First"
        first = [t for t in _SPLIT.split(pieces[-1]) if _squash(t.replace("-", ""))]
        last = [t for t in pieces[0].replace("-", " ").split() if _squash(t)]
        return first, last
    tokens = [t for t in _SPLIT.split(pieces[0] if pieces else "") if _squash(t.replace("-", ""))]
    tokens = [t for t in tokens if _squash(t) not in _SUFFIXES] or tokens
    if len(tokens) < 2:
        return None
    cut = len(tokens) - 1
    while cut > 1 and _squash(tokens[cut - 1]) in PARTICLES:
        cut -= 1
    return tokens[:cut], tokens[cut:]


def _surnames(last: list[str]) -> list[str]:
    """The surname as written and, when it starts with particles, without them."""
    words = [w for w in (_squash(t) for t in last) if w and w not in _SUFFIXES]
    out = ["".join(words)]
    bare = list(itertools.dropwhile(lambda w: w in PARTICLES, words[:-1])) + words[-1:]
    if words and len(bare) < len(words):
        out.append("".join(bare))
    return [s for s in out if s]


def _parse(text: str) -> tuple[list[str], str, str, bool] | None:
    found = _parts(_INITIAL_HYPHEN.sub("-", " ".join(text.split())))
    if found is None:
        return None
    first, last = found
    surnames = _surnames(last)
    pieces = [_squash(p) for p in first[0].split("-")] if first else []
    pieces = [p for p in pieces if p]
    if not surnames or not pieces:
        return None
    initials = "".join(p[0] for p in pieces)
    only = all(len(p) == 1 for p in pieces)
    return surnames, initials if only else "".join(pieces), initials, only


@functools.lru_cache(maxsize=65_536)  # a day's authors and follows repeat across batches
def parse_name(raw: str) -> Name | None:
    """'Yann LeCun', 'Y. LeCun', 'LeCun, Yann', 'le cun, y.' → one `Name`; None without a
    surname (an empty or one-word name cannot be told apart from others)."""
    spellings = [raw] + ([raw.translate(_UMLAUTS)] if raw.translate(_UMLAUTS) != raw else [])
    parsed = [p for p in (_parse(fold(s)) for s in spellings) if p is not None]
    if not parsed:
        return None
    surnames = tuple(dict.fromkeys(s for p in parsed for s in p[0]))
    givens = tuple(dict.fromkeys(p[1] for p in parsed))
    _, _, initials, only = parsed[0]
    return Name(surnames, givens, initials, only)


@dataclass(frozen=True)
class AuthorIndex:
    """The day's paper authors as keys: `matrix[key, paper]` is 1 when an author has it."""

    keys: dict[str, int]
    matrix: sparse.csr_matrix  # keys x papers
    names: tuple[tuple[tuple[Name, str], ...], ...]  # per paper: (parsed, as written)


def index_authors(papers: Sequence[Paper]) -> AuthorIndex:
    keys: dict[str, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    names = []
    for j, paper in enumerate(papers):
        parsed = []
        for written in paper.authors:
            name = parse_name(written)
            if name is None:
                continue
            parsed.append((name, written))
            for key in name.keys:
                rows.append(keys.setdefault(key, len(keys)))
                cols.append(j)
        names.append(tuple(parsed))
    matrix = sparse.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(keys), len(papers))
    )
    matrix.data[:] = 1.0  # an author listed twice counts once
    return AuthorIndex(keys, matrix, tuple(names))


def papers_with_any(
    keys_per_row: Sequence[Sequence[int]], key_papers: sparse.csr_matrix | sparse.csc_matrix
) -> np.ndarray:
    """Rows × papers: True where a paper has one of the row's keys. `key_papers` is the keys ×
    papers incidence (followed names, categories); one sparse product for all the rows."""
    rows = [r for r, keys in enumerate(keys_per_row) for _ in keys]
    cols = [k for keys in keys_per_row for k in keys]
    want = sparse.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)),
        shape=(len(keys_per_row), key_papers.shape[0]),
    )
    hits: np.ndarray = (want @ key_papers).toarray() > 0
    return hits


def follow_matches(index: AuthorIndex, follows: Sequence[Sequence[str]]) -> np.ndarray:
    """Per row of `follows` (one subscriber's followed names): which papers have one of them."""
    keys_per_row = []
    for names in follows:
        parsed = [n for n in map(parse_name, names) if n is not None]
        keys = (index.keys.get(key) for name in parsed for key in name.accepts)
        keys_per_row.append([k for k in keys if k is not None])
    return papers_with_any(keys_per_row, index.matrix)


def followed_author(index: AuthorIndex, doc: int, follows: Sequence[str]) -> str:
    """The paper's author that one of `follows` names: as the paper writes it, or, when the
    paper gives only initials and the reader typed the full name, as the reader typed it
    ("L. van der Maaten" is shown "Laurens van der Maaten", not a name pieced together)."""
    wanted = [(n, f) for n, f in ((parse_name(f), f) for f in follows) if n is not None]
    for name, written in index.names[doc]:
        for follow, typed in wanted:
            if set(follow.accepts) & set(name.keys):
                if name.initial_only and not follow.initial_only:
                    return " ".join(typed.split())
                return written
    return ""


def author_boost(
    index: AuthorIndex, follows: Sequence[Sequence[str]], boost: float, rel: np.ndarray
) -> None:
    """Add `boost` to `rel[i, paper]` where a name subscriber i follows wrote the paper; only
    rows with follows are multiplied."""
    who = [i for i, names in enumerate(follows) if names]
    if not who or not index.keys:
        return
    hits = follow_matches(index, [follows[i] for i in who])
    rel[np.array(who, dtype=np.int64)] += np.float32(boost) * hits
