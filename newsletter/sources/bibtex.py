"""A small BibTeX reader: entries as (type, key, fields), values with braces and quotes kept
balanced, `#` concatenation and @string macros resolved; @comment and @preamble skipped.
A malformed file raises `LibraryError` naming the line where the broken entry starts."""

from __future__ import annotations

import re

from newsletter.errors import LibraryError

_AT = re.compile(r"@\s*([A-Za-z]+)\s*([{(])")
_NAME = re.compile(r"\s*([A-Za-z0-9_\-:.+/]+)\s*")
_SKIPPED = frozenset({"comment", "preamble"})


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.macros: dict[str, str] = {}  # @string names; an unknown name stays as written

    def line(self, pos: int) -> int:
        return self.text.count("\n", 0, pos) + 1

    def balanced(self, start: int, opener: str, what: str) -> int:
        """The position just after the brace (or parenthesis) matching the one at `start`."""
        closer = "}" if opener == "{" else ")"
        depth = 0  # braces; an entry opened with '(' ends at the ')' outside every brace
        for i in range(start + 1, len(self.text)):
            c = self.text[i]
            if c == "{":
                depth += 1
            elif c == "}":
                if depth == 0 and closer == "}":
                    return i + 1
                depth = max(depth - 1, 0)
            elif c == ")" and closer == ")" and depth == 0:
                return i + 1
        raise LibraryError(
            f"line {self.line(start)}: {what} is not closed (a '{closer}' is missing)"
        )

    def value(self, pos: int, end: int, where: str) -> tuple[str, int]:
        """One field value (parts joined by '#') starting at `pos`; returns it and the position
        after it."""
        parts: list[str] = []
        while True:
            while pos < end and self.text[pos].isspace():
                pos += 1
            c = self.text[pos] if pos < end else ""
            if c == "{":
                after = self.balanced(pos, "{", where)
                parts.append(self.text[pos + 1 : after - 1])
            elif c == '"':
                after = pos + 1
                depth = 0
                while after < end and not (self.text[after] == '"' and depth == 0):
                    depth += {"{": 1, "}": -1}.get(self.text[after], 0)
                    after += 1
                if after >= end:
                    raise LibraryError(f"line {self.line(pos)}: {where}: a '\"' is not closed")
                parts.append(self.text[pos + 1 : after])
                after += 1
            else:
                m = _NAME.match(self.text, pos, end)
                if m is None or not m.group(1):
                    raise LibraryError(f"line {self.line(pos)}: {where}: a value is missing")
                word = m.group(1)
                parts.append(word if word.isdigit() else self.macros.get(word.lower(), word))
                after = m.end()
            pos = after
            while pos < end and self.text[pos].isspace():
                pos += 1
            if pos < end and self.text[pos] == "#":
                pos += 1
                continue
            return " ".join(" ".join(parts).split()), pos

    def fields(self, pos: int, end: int, where: str) -> dict[str, str]:
        out: dict[str, str] = {}
        while True:
            while pos < end and (self.text[pos].isspace() or self.text[pos] == ","):
                pos += 1
            if pos >= end:
                return out
            m = _NAME.match(self.text, pos, end)
            if m is None or m.end() >= end or self.text[m.end()] != "=":
                raise LibraryError(f"line {self.line(pos)}: {where}: expected 'name = value' here")
            value, pos = self.value(m.end() + 1, end, f"{where}, field {m.group(1)}")
            out[m.group(1).lower()] = value
            if pos < end and self.text[pos] not in ",":
                raise LibraryError(
                    f"line {self.line(pos)}: {where}: a ',' is missing after field {m.group(1)}"
                )


def parse_bibtex(text: str) -> list[tuple[str, str, dict[str, str]]]:
    """Every entry of a .bib file as (type, citation key, fields with lower-case names)."""
    reader = _Reader(text)
    out: list[tuple[str, str, dict[str, str]]] = []
    pos = 0
    while (m := _AT.search(text, pos)) is not None:
        kind, opener = m.group(1).lower(), m.group(2)
        where = f"the @{kind} entry"
        end = reader.balanced(m.end() - 1, opener, where)
        body_start, body_end = m.end(), end - 1
        pos = end
        if kind in _SKIPPED:
            continue
        if kind == "string":
            reader.macros.update(reader.fields(body_start, body_end, where))
            continue
        key, comma, _ = text[body_start:body_end].partition(",")
        key = key.strip()
        if not comma or not key or any(c.isspace() for c in key):
            raise LibraryError(
                f"line {reader.line(m.start())}: {where} has no citation key before its first ','"
            )
        start = body_start + text[body_start:body_end].index(",") + 1
        out.append((kind, key, reader.fields(start, body_end, f"entry {key}")))
    return out
