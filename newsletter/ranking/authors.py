"""Followed authors: names normalised so "Y. LeCun", "LeCun, Yann" and "Yann Le Cun" meet.

A name is reduced to its surname (accents folded, case, spaces and hyphens removed, particles
such as "van der" kept with it) and its first given name, either in full or as an initial.
A follow matches a paper's author when the surnames agree and the given names agree as far
as both are known: "Yann LeCun" matches "Yann LeCun" and "Y. LeCun", not "Yves LeCun"; a
follow typed with an initial ("Y. LeCun") matches every LeCun whose first name starts with Y.

Matching is one sparse product per batch: each paper author becomes a few keys, each follow
the keys it accepts, and only subscribers who follow someone get a row.
"""

from __future__ import annotations

import functools
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


@dataclass(frozen=True)
class Name:
    surname: str  # "lecun"
    given: str  # "yann", or "y" when only an initial is known
    initial_only: bool

    @property
    def keys(self) -> tuple[str, ...]:
        """What a paper author with this name is indexed under."""
        kind = "." if self.initial_only else "=" + self.given
        return (f"{self.surname}|{self.given[:1]}*", f"{self.surname}|{self.given[:1]}{kind}")

    @property
    def accepts(self) -> tuple[str, ...]:
        """The keys of the paper authors a follow of this name matches."""
        if self.initial_only or not self.given:
            return (f"{self.surname}|{self.given[:1]}*",)
        first = self.given[:1]
        return (f"{self.surname}|{first}={self.given}", f"{self.surname}|{first}.")


def fold(text: str) -> str:
    """Lower case without accents: 'Ünal' → 'unal', 'Łukasz' → 'lukasz'."""
    text = text.replace("ł", "l").replace("Ł", "L").replace("ø", "o").replace("Ø", "O")
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _squash(token: str) -> str:
    return _LETTERS.sub("", token).replace("_", "")


@functools.lru_cache(maxsize=65_536)  # a day's authors and follows repeat across batches
def parse_name(raw: str) -> Name | None:
    """'Yann LeCun', 'Y. LeCun', 'LeCun, Yann', 'le cun, y.' → one `Name`; None without a
    surname (an empty or one-word name cannot be told apart from others)."""
    text = fold(" ".join(raw.split()))
    if "," in text:
        last, _, first = text.partition(",")
        first_tokens = [t for t in _SPLIT.split(first.replace("-", " ")) if _squash(t)]
        last_tokens = [t for t in last.replace("-", " ").split() if _squash(t)]
    else:
        tokens = [t for t in _SPLIT.split(text) if _squash(t.replace("-", ""))]
        tokens = [t for t in tokens if _squash(t) not in _SUFFIXES] or tokens
        if len(tokens) < 2:
            return None
        cut = len(tokens) - 1
        while cut > 1 and _squash(tokens[cut - 1]) in PARTICLES:
            cut -= 1
        first_tokens = [t for part in tokens[:cut] for t in part.split("-") if _squash(t)]
        last_tokens = tokens[cut:]
    surname = "".join(_squash(t) for t in last_tokens if _squash(t) not in _SUFFIXES)
    if not surname or not first_tokens:
        return None
    given = _squash(first_tokens[0])
    initial = len(given) == 1
    return Name(surname, given, initial)


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
    """The paper's author (as the paper writes it) that one of `follows` names, or ""."""
    wanted = [n for n in (parse_name(f) for f in follows) if n is not None]
    for name, written in index.names[doc]:
        for follow in wanted:
            if set(follow.accepts) & set(name.keys):
                return written if not name.initial_only else _shown(follow, written)
    return ""


def _shown(follow: Name, written: str) -> str:
    """A paper that only gives the initial: the followed name, in the paper's capitalisation."""
    surname = written.split()[-1] if "," not in written else written.split(",")[0]
    return f"{follow.given.title()} {surname.strip()}" if not follow.initial_only else written


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
