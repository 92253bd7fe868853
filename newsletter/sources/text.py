"""Text clean-up shared by the parsers: whitespace, TeX accents in names, author lists, XML."""

from __future__ import annotations

import re
import unicodedata
import xml.etree.ElementTree as ET

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as defused_fromstring

from newsletter.errors import FeedError

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


def clean_text(text: str | None) -> str:
    """Collapse hard-wrapped lines; keep paragraph breaks (a line starting with indentation)."""
    if not text:
        return ""
    paragraphs = _PARAGRAPH.split(text.strip())
    return "\n".join(p for p in (_SPACES.sub(" ", q).strip() for q in paragraphs) if p)


def one_line(text: str | None) -> str:
    """Titles and names: one line, single spaces."""
    return _SPACES.sub(" ", text or "").strip()


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
