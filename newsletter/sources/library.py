"""A reference manager's export (BibTeX, RIS, Zotero CSL-JSON) read into entries and their
arXiv IDs. Bytes in, `Library` out, no I/O; a file that cannot be read raises
`LibraryError` naming the line (or entry) where it went wrong, so nothing is half-imported.

An entry's arXiv ID is found in, by order of trust: an `eprint` (BibTeX) or `number`
(CSL-JSON) field of an arXiv entry, an arXiv DOI (10.48550/arXiv.2401.01234), an
arxiv.org/abs or /pdf URL, or an "arXiv:2401.01234" anywhere in the entry (notes, journal).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from newsletter.errors import LibraryError
from newsletter.models import split_arxiv_id
from newsletter.sources.bibtex import parse_bibtex

MAX_LIBRARY_BYTES = 2 * 1024 * 1024
MAX_ENTRIES = 5000
# YYMM.NNNNN with a real month; a digit right after it means a longer number, not an ID
# ("2401.123456" is not 2401.12345 with a stray 6).
_NEW_ID = r"\d{2}(?:0[1-9]|1[0-2])\.\d{4,5}(?:v\d+)?(?!\d)"
_OLD_ID = r"[a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{7}(?:v\d+)?(?!\d)"
_ID = f"(?:{_NEW_ID}|{_OLD_ID})"
_FOUND = re.compile(
    rf"10\.48550/arxiv\.(?P<doi>{_ID})"
    rf"|(?<![\w.-])(?:(?:www|export)\.)?arxiv\.org/(?:abs|pdf)/(?P<url>{_ID})"
    rf"|(?<![\w.-])arxiv:\s*(?P<tag>{_ID})",
    re.IGNORECASE,
)
_OLD_STYLE = re.compile(
    r"(?P<archive>[a-z\-]+)(?:\.(?P<subject>[a-z]{2}))?/(?P<number>\d{7})", re.I
)
# Fields that are prose about other work (an abstract citing arXiv:2301.00001 is not this
# entry's ID) or its title: never searched for an ID.
_PROSE = frozenset({"title", "abstract"})
_RIS_PROSE = frozenset({"TI", "T1", "T2", "AB", "N2"})
# A line that opens a BibTeX entry; [ \t]* (not \s*) so blank lines are not rescanned from
# every line start, which made a 2 MB file of newlines take hours.
_BIBTEX_START = re.compile(r"^[ \t]*@[ \t]*\w+[ \t]*[{(]", re.MULTILINE)
_BARE = re.compile(rf"\s*(?:arxiv:\s*)?(?P<id>{_ID})\s*", re.IGNORECASE)
_RIS_LINE = re.compile(r"^(?P<tag>[A-Z][A-Z0-9])  -(?: (?P<value>.*))?$")


@dataclass(frozen=True)
class Entry:
    label: str  # its title (or citation key), for saying which entries had no arXiv ID
    arxiv_id: str | None


@dataclass(frozen=True)
class Library:
    format: str  # "BibTeX", "RIS" or "CSL-JSON"
    entries: tuple[Entry, ...]


def _normal(raw: str) -> str | None:
    """The ID as arXiv writes it: no version, an old-style archive in lower case and its
    subject class in upper case ("HEP-TH/9901001" -> "hep-th/9901001", "math.ag/..." ->
    "math.AG/..."), so one paper written two ways is one paper."""
    try:
        found = split_arxiv_id(raw)[0]
    except ValueError:
        return None
    old = _OLD_STYLE.fullmatch(found)
    if old is None:
        return found
    subject = f".{old.group('subject').upper()}" if old.group("subject") else ""
    return f"{old.group('archive').lower()}{subject}/{old.group('number')}"


def find_arxiv_id(eprint: str, texts: Iterable[str]) -> str | None:
    """The arXiv ID of an entry: `eprint` (a field that holds only an ID in an arXiv entry),
    else the first arXiv DOI, URL or "arXiv:" tag in `texts`."""
    bare = _BARE.fullmatch(eprint) if eprint else None
    if bare:
        return _normal(bare.group("id"))
    for text in texts:
        m = _FOUND.search(text)
        if m:
            return _normal(m.group("doi") or m.group("url") or m.group("tag"))
    return None


def _label(title: str, fallback: str) -> str:
    title = " ".join(title.replace("{", "").replace("}", "").split())
    text = title or fallback
    return text if len(text) <= 80 else text[:79].rstrip() + "…"


def _decode(data: bytes) -> str:
    if len(data) > MAX_LIBRARY_BYTES:
        raise LibraryError(
            f"the file is larger than {MAX_LIBRARY_BYTES // 1024 // 1024} MB, the most that can "
            "be imported at once: export a part of your library (e.g. one collection)"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise LibraryError(
            f"line {line}: the file is not UTF-8 text; export it again as UTF-8"
        ) from None


def parse_library(data: bytes) -> Library:
    """Read a BibTeX, RIS or CSL-JSON export (recognised by its content, not its name)."""
    text = _decode(data)
    start = text.lstrip()[:1]
    if start in ("[", "{"):
        library = Library("CSL-JSON", _csl_json(text))
    elif re.search(r"^TY  -", text, re.MULTILINE):
        library = Library("RIS", _ris(text))
    elif _BIBTEX_START.search(text):
        library = Library("BibTeX", tuple(_bibtex_entry(e) for e in parse_bibtex(text)))
    else:
        raise LibraryError(
            "this is not a BibTeX (.bib), RIS (.ris) or CSL-JSON (.json) export: no entries found"
        )
    if len(library.entries) > MAX_ENTRIES:
        raise LibraryError(
            f"the file has {len(library.entries):,} entries; at most {MAX_ENTRIES:,} can be "
            "imported at once"
        )
    return library


def _bibtex_entry(entry: tuple[str, str, Mapping[str, str]]) -> Entry:
    kind, key, fields = entry
    prefix = (fields.get("archiveprefix", "") + fields.get("eprinttype", "")).lower()
    eprint = fields.get("eprint", "")
    if prefix and "arxiv" not in prefix:
        eprint = ""  # an eprint on another server (e.g. bioRxiv's DOI suffix)
    texts = [fields[k] for k in ("doi", "url", "eprint", "journal", "note") if k in fields]
    texts += [v for k, v in fields.items() if k not in _PROSE]
    return Entry(_label(fields.get("title", ""), f"@{kind}{{{key}}}"), find_arxiv_id(eprint, texts))


def _ris(text: str) -> tuple[Entry, ...]:
    entries: list[Entry] = []
    fields: dict[str, list[str]] | None = None
    started = 0
    for n, line in enumerate(text.splitlines(), start=1):
        m = _RIS_LINE.match(line.rstrip())
        if m is None:
            if not line.strip():
                continue
            if fields is None:
                raise LibraryError(f"line {n}: expected 'TY  - ' to start a RIS record")
            continue  # a wrapped value: its first line carried what an ID needs
        tag, value = m.group("tag"), (m.group("value") or "").strip()
        if tag == "TY":
            if fields is not None:
                raise LibraryError(f"line {n}: a new record starts before 'ER  -' ended the last")
            fields, started = {}, n
        elif fields is None:
            raise LibraryError(f"line {n}: {tag} outside a record (a 'TY  - ' line must open it)")
        elif tag == "ER":
            title = (fields.get("TI") or fields.get("T1") or [""])[0]
            texts = [v for k, vs in fields.items() if k not in _RIS_PROSE for v in vs]
            entries.append(
                Entry(_label(title, f"record on line {started}"), find_arxiv_id("", texts))
            )
            fields = None
        else:
            fields.setdefault(tag, []).append(value)
    if fields is not None:
        raise LibraryError(f"line {started}: this RIS record has no 'ER  -' line ending it")
    return tuple(entries)


def _csl_json(text: str) -> tuple[Entry, ...]:
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LibraryError(
            f"line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg})"
        ) from None
    except RecursionError:
        raise LibraryError("the JSON is nested too deeply to be a CSL-JSON export") from None
    except ValueError as exc:  # e.g. an integer of thousands of digits
        raise LibraryError(f"not valid CSL-JSON ({str(exc).split(':')[0]})") from None
    if isinstance(items, dict) and isinstance(items.get("items"), list):
        items = items["items"]
    elif isinstance(items, dict) and ("title" in items or "type" in items):
        items = [items]  # one item exported on its own
    if not isinstance(items, list):
        raise LibraryError("a CSL-JSON export is a list of entries ([...]); this is not one")
    entries = []
    for n, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise LibraryError(f"entry {n}: not a CSL-JSON item (an object with a title)")
        values = {k: v for k, v in item.items() if isinstance(v, str)}
        server = " ".join(values.get(k, "") for k in ("publisher", "archive", "container-title"))
        eprint = values.get("number", "") if "arxiv" in server.lower() else ""
        texts = [
            values[k] for k in ("DOI", "URL", "number", "note", "archive_location") if k in values
        ]
        texts += [v for k, v in values.items() if k not in _PROSE]
        fallback = f"entry {n}" + (f" ({values['id']})" if values.get("id") else "")
        entries.append(
            Entry(_label(values.get("title", ""), fallback), find_arxiv_id(eprint, texts))
        )
    return tuple(entries)
