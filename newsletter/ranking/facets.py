"""The facets of an interest: the topic and the scope a paper must both cover.

An interest of the form "topic: examples" has one facet (the examples widen the topic).

"pruning of vision transformers" is about pruning *and* vision transformers; a paper on CNN
pruning covers one facet of it. Facets are the parts of an interest split at the
prepositions that attach a scope (of, for, in, on, with, via, using, under) and at commas
and semicolons — except when the commas enumerate alternatives ("selection, filtering and
curation"), which stay one facet. A facet written as an acronym next to a topic ("ViT
quantization") is a facet of its own. A part with no topic word ("I am interested",
"Keep me up to date" before "with ...": function words and the words of a request) is no
facet: nothing could cover it.
"""

from __future__ import annotations

import re

from newsletter.ranking.acronyms import Acronyms
from newsletter.ranking.textindex import STOPWORDS, is_request_word

_SCOPE = frozenset(["of", "for", "in", "on", "with", "via", "using", "under"])
_ENUMERATION = re.compile(r"(?:^|\s)(?:and|or)\s", re.IGNORECASE)
_TOKEN = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*|[,;:]")


def _parts(tokens: list[str]) -> list[list[str]]:
    """Split at commas and semicolons unless the list is an enumeration ("a, b and c")."""
    parts: list[list[str]] = [[]]
    for t in tokens:
        if t in ",;":
            parts.append([])
        elif t != ":":
            parts[-1].append(t)
    parts = [p for p in parts if p]
    if len(parts) > 1 and _ENUMERATION.search(" ".join(parts[-1])):
        return [[w for p in parts for w in p]]
    return parts


def _is_acronym(word: str, acronyms: Acronyms) -> bool:
    return acronyms.expansion(word) is not None


def _split_scope(words: list[str]) -> list[list[str]]:
    out: list[list[str]] = [[]]
    for w in words:
        if w.lower() in _SCOPE:
            if out[-1]:
                out.append([])
        else:
            out[-1].append(w)
    return [p for p in out if p]


def _split_acronym(words: list[str], acronyms: Acronyms) -> list[list[str]]:
    """ "ViT quantization" -> ["ViT"], ["quantization"]: an acronym beside one word (longer
    phrases such as "KV cache compression" are compounds and stay whole)."""
    if len(words) != 2:
        return [words]
    if _is_acronym(words[0], acronyms) and not _is_acronym(words[1], acronyms):
        return [words[:1], words[1:]]
    if _is_acronym(words[-1], acronyms) and not _is_acronym(words[-2], acronyms):
        return [words[:-1], words[-1:]]
    return [words]


def facets(text: str, acronyms: Acronyms) -> tuple[str, ...]:
    """The facets of one interest text, as the reader wrote them; () for a single facet."""
    tokens = _TOKEN.findall(text)
    if ":" in tokens:
        return ()  # "topic: examples, ...": the examples widen the topic, they add no facet
    groups: list[list[str]] = []
    for part in _parts(tokens):
        for piece in _split_scope(part):
            groups += _split_acronym(piece, acronyms)
    groups = [g for g in map(_trimmed, groups) if g]
    return tuple(" ".join(g) for g in groups) if len(groups) > 1 else ()


def _trimmed(words: list[str]) -> list[str]:
    """The words from the first topic word to the last: "Can you send me recent papers about
    KV cache compression" -> "KV cache compression" (a reason names it); [] for none."""
    topical = [i for i, w in enumerate(words) if _topical(w)]
    return words[topical[0] : topical[-1] + 1] if topical else []


def _topical(word: str) -> bool:
    return len(word) > 1 and word.lower() not in STOPWORDS and not is_request_word(word)


def named_parts(text: str, acronyms: Acronyms) -> tuple[str, ...]:
    """The reader's own phrases a reason may name: the facets, or else the parts of the text
    between commas, semicolons and a colon ("neural audio codecs", "text-to-speech")."""
    found = facets(text, acronyms)
    if found:
        return found
    pieces = [" ".join(t for t in _TOKEN.findall(p)) for p in re.split(r"[,;:]", text)]
    pieces = [p for p in pieces if p]
    return tuple(pieces) if len(pieces) > 1 else ()
