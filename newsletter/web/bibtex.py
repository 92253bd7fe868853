"""A paper's BibTeX entry, as arXiv's own export writes it (an @misc with eprint fields)."""

from __future__ import annotations

import re
import unicodedata

from newsletter.models import Paper
from newsletter.render.views import one_line, readable

_SPECIAL = str.maketrans({c: f"\\{c}" for c in "&%$#_"} | {"{": "\\{", "}": "\\}"})


def _escape(text: str) -> str:
    return one_line(text).translate(_SPECIAL)


def cite_key(paper: Paper) -> str:
    """'vaswani2017attention'-style: first author's surname, year, first title word."""
    surname = paper.authors[0].split()[-1] if paper.authors and paper.authors[0].split() else ""
    word = next((w for w in re.findall(r"[A-Za-z]+", paper.title) if len(w) > 3), "")
    year = paper.published.year if paper.published else 2000 + int(paper.id[:2])
    ascii_name = unicodedata.normalize("NFKD", surname).encode("ascii", "ignore").decode()
    return f"{re.sub(r'[^a-z]', '', ascii_name.lower())}{year}{word.lower()}"


def bibtex(paper: Paper) -> str:
    """The entry: title, authors joined by 'and', year, eprint, class and URL."""
    year = paper.published.year if paper.published else 2000 + int(paper.id[:2])
    fields = [
        ("title", "{" + _escape(readable(paper.title) or paper.id) + "}"),
        ("author", " and ".join(_escape(a) for a in paper.authors if a.strip())),
        ("year", str(year)),
        ("eprint", paper.id),
        ("archivePrefix", "arXiv"),
        ("primaryClass", _escape(paper.primary_category)),
        ("url", f"https://arxiv.org/abs/{paper.id}"),
    ]
    if paper.doi:
        fields.append(("doi", _escape(paper.doi)))
    body = ",\n".join(f"  {k} = {{{v}}}" for k, v in fields if v)
    return f"@misc{{{cite_key(paper)},\n{body}\n}}\n"
