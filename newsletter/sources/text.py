"""Text clean-up shared by the parsers: whitespace, control characters, TeX accents in names,
author lists, the caps on field lengths, XML."""

from __future__ import annotations

import dataclasses
import logging
import re
import unicodedata
import xml.etree.ElementTree as ET

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as defused_fromstring

from newsletter.errors import FeedError
from newsletter.models import Paper

log = logging.getLogger(__name__)

# The longest fields a parser keeps. Real ones are far shorter (arXiv titles stay under ~300
# characters, abstracts under 1,920; the largest collaborations list about 5,000 authors), so
# a longer field is a broken or hostile feed; bounding it bounds the work of everything after
# (search, ranking, LaTeX, the e-mail size guard).
MAX_TITLE_CHARS = 1_000
MAX_ABSTRACT_CHARS = 10_000  # also the AI summary
MAX_AUTHOR_CHARS = 300  # one name
MAX_AUTHORS = 6_000

# Control characters a terminal acts on: C0 (ESC starts an escape sequence, BEL ends one), DEL
# and C1. Tab, line breaks and the other controls Python counts as whitespace are left to the
# whitespace rules below. Complete CSI and OSC sequences (colours, cursor moves, hyperlinks,
# window titles) go whole, so no "]8;;https://…" residue is left in a title.
_ESCAPE_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor, erase
    r"|(?:\x1b\]|\x9d)[^\x00-\x1f\x7f-\x9f]{0,512}(?:\x07|\x1b\\|\x9c)"  # OSC: links, titles
)
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f]")
_PARAGRAPH = re.compile(r"\n[ \t]+")
_SPACES = re.compile(r"\s+")

# TeX accent commands arXiv keeps in author names ("Pi\v{z}urica", "M{\o}lmer").
_COMBINING = {
    "'": "\u0301",
    "`": "\u0300",
    "^": "\u0302",
    '"': "\u0308",
    "~": "\u0303",
    "=": "\u0304",
    ".": "\u0307",
    "u": "\u0306",
    "v": "\u030c",
    "H": "\u030b",
    "c": "\u0327",
    "k": "\u0328",
    "r": "\u030a",
    "d": "\u0323",
    "b": "\u0331",
}
_LETTERS = {
    "ss": "ß",
    "aa": "å",
    "AA": "Å",
    "ae": "æ",
    "AE": "Æ",
    "oe": "œ",
    "OE": "Œ",
    "o": "ø",
    "O": "Ø",
    "l": "ł",
    "L": "Ł",
    "i": "ı",
    "j": "ȷ",
}
_ACCENT = re.compile(
    r"\{?\\(?:([`'^\"~=.])|([uvHckrdb])(?=[\s{]))\s*"
    r"(?:\{\s*(\\[ij]|[A-Za-z])\s*\}|(\\[ij]|[A-Za-z]))\}?"
)
_LETTER = re.compile(r"\{?\\(ss|aa|AA|ae|AE|oe|OE|o|O|l|L|i|j)(?![A-Za-z])\s*\}?")


def strip_controls(text: str) -> str:
    """`text` without terminal escape sequences and control characters (whitespace stays)."""
    if text.isprintable():
        return text
    return _CONTROL.sub("", _ESCAPE_SEQUENCE.sub("", text))


def clean_text(text: str | None) -> str:
    """Abstracts: collapse hard-wrapped lines; keep paragraph breaks (a line starting with
    indentation) as the only line breaks; no control characters."""
    if not text:
        return ""
    paragraphs = _PARAGRAPH.split(strip_controls(text).strip())
    return "\n".join(p for p in (_SPACES.sub(" ", q).strip() for q in paragraphs) if p)


def one_line(text: str | None) -> str:
    """Every other field (titles, names, categories, links): one line, single spaces, no
    control characters."""
    return _SPACES.sub(" ", strip_controls(text or "")).strip()


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _capped(paper: Paper, source: str, name: str, value: str, limit: int) -> str:
    if len(value) <= limit:
        return value
    log.warning(
        "%s: paper %s: %s cut from %d to %d characters", source, paper.id, name, len(value), limit
    )
    return _cut(value, limit)


def capped(paper: Paper, source: str) -> Paper:
    """`paper` with any field over its cap (see MAX_*) cut, each cut logged as a warning."""
    title = _capped(paper, source, "title", paper.title, MAX_TITLE_CHARS)
    abstract = _capped(paper, source, "abstract", paper.abstract, MAX_ABSTRACT_CHARS)
    summary = _capped(paper, source, "AI summary", paper.ai_summary, MAX_ABSTRACT_CHARS)
    authors = paper.authors
    long_names = sum(1 for a in authors[:MAX_AUTHORS] if len(a) > MAX_AUTHOR_CHARS)
    if long_names or len(authors) > MAX_AUTHORS:
        log.warning(
            "%s: paper %s: authors cut to %d of %d (at most %d); %d name(s) cut to %d characters",
            source, paper.id, min(len(authors), MAX_AUTHORS), len(authors), MAX_AUTHORS,
            long_names, MAX_AUTHOR_CHARS,
        )  # fmt: skip
        authors = tuple(_cut(a, MAX_AUTHOR_CHARS) for a in authors[:MAX_AUTHORS])
    kept = (paper.title, paper.abstract, paper.ai_summary, paper.authors)
    if all(new is old for new, old in zip((title, abstract, summary, authors), kept, strict=True)):
        return paper
    return dataclasses.replace(
        paper, title=title, abstract=abstract, ai_summary=summary, authors=authors
    )


def tex_to_unicode(text: str) -> str:
    """Turn TeX accents in names into Unicode: 'Milovi\\'c' -> 'Milović'."""
    if "\\" not in text:
        return text

    def accent(m: re.Match[str]) -> str:
        mark = _COMBINING[m.group(1) or m.group(2)]
        base = m.group(3) or m.group(4)
        base = {"\\i": "i", "\\j": "j"}.get(base, base)
        return base + mark

    text = _ACCENT.sub(accent, text)
    text = _LETTER.sub(lambda m: _LETTERS[m.group(1)], text)
    return unicodedata.normalize("NFC", text)


def _split_top_level(text: str, sep: str) -> list[str]:
    """Split on `sep` outside parentheses and brackets."""
    if "(" not in text and "[" not in text:
        return text.split(sep)
    parts: list[str] = []
    current: list[str] = []
    depth = i = 0
    while i < len(text):
        ch = text[i]
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth = max(0, depth - 1)
        if depth == 0 and text.startswith(sep, i):
            parts.append("".join(current))
            current = []
            i += len(sep)
            continue
        current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


_TRAILING_AFFILIATION = re.compile(r"\s*\([^()]*(?:\([^()]*\)[^()]*)*\)\s*$")


def split_authors(creator: str) -> tuple[str, ...]:
    """Split arXiv's one-string author list: commas and 'and' outside parentheses.

    'A. One (MIT, Cambridge), B. Two and C. Three' -> ('A. One', 'B. Two', 'C. Three');
    affiliations in parentheses are dropped from the names.
    """
    longest = MAX_AUTHORS * (MAX_AUTHOR_CHARS + 2)  # more could not be kept anyway
    if len(creator) > longest:
        log.warning("an author list of %d characters cut to %d", len(creator), longest)
        creator = creator[:longest]
    names: list[str] = []
    for chunk in _split_top_level(one_line(creator), ","):
        for name in _split_top_level(chunk, " and "):
            name = name.strip()
            if name.lower().startswith("and "):
                name = name[4:]
            name = _TRAILING_AFFILIATION.sub("", name).strip()
            if name and name.lower() not in {"et al", "et al."}:
                names.append(tex_to_unicode(name))
    return tuple(names)


def parse_xml(content: bytes, url: str, what: str) -> ET.Element:
    """Parse a feed strictly (no network), refusing any DTD or entity declaration.

    No feed we read has a DOCTYPE, and an internal entity is how a few kilobytes expand into
    gigabytes: expat's own amplification limit is beaten by padding the document (a 4 MB
    comment before the DOCTYPE), so the declaration itself is refused, wherever it sits, as
    defusedxml reports it while parsing. feedparser is not used for the current arXiv feeds: it
    treats the abstract as HTML and drops text such as "<think>" from it.
    """
    head = content[:2048].lstrip().lower()
    try:
        root = defused_fromstring(content, forbid_dtd=True)
    except DefusedXmlException:
        if b"<html" in head:
            raise FeedError(f"{url} sent an HTML page, not {what}") from None
        raise FeedError(
            f"{url} sent a document with a DTD or entity declaration, not {what}: refused "
            "unread (entities can expand a small feed into gigabytes)"
        ) from None
    except ET.ParseError as exc:
        hint = "an HTML page" if head.startswith((b"<html", b"<!doctype")) else "bad XML"
        raise FeedError(f"{url} sent {hint} instead of {what} ({exc})") from None
    if root.tag.lower() == "html" or root.tag.endswith("}html"):
        raise FeedError(f"{url} sent an HTML page (an error page?) instead of {what}")
    return root
