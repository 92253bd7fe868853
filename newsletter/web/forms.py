"""The preference fields of the web forms, read into `Preferences` and checked by the one
validation rule the CLI uses too (`subscriptions.check_preferences`)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from starlette.datastructures import FormData

from newsletter.preferences import Preferences, check_preferences

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _split_list(raw: str, separators: str = r"[,;\n]") -> list[str]:
    """'a, b; c' → ['a', 'b', 'c']: whitespace folded, case-insensitive duplicates dropped."""
    items: dict[str, str] = {}
    for part in re.split(separators, raw):
        item = " ".join(part.split())
        if item:
            items.setdefault(item.casefold(), item)
    return list(items.values())


def _int(raw: object, fallback: int) -> int:
    try:
        return int(str(raw).strip())
    except ValueError:
        return fallback


def _text(form: FormData, key: str) -> str:
    value = form.get(key, "")
    return _CONTROL.sub("", value) if isinstance(value, str) else ""


def parse_preferences(
    form: FormData, allowed_categories: Sequence[str]
) -> tuple[Preferences, dict[str, str]]:
    """Read the preference fields of a submitted form; errors maps field name -> message."""
    categories = [c for c in form.getlist("categories") if isinstance(c, str)]
    prefs = Preferences(
        keywords=_split_list(_text(form, "keywords")),
        description=_text(form, "description").strip(),
        negatives=_split_list(_text(form, "negatives")),
        categories=list(dict.fromkeys(categories)),
        # "Get papers like this" on a paper page sends its ID along.
        likes=[x.strip() for x in form.getlist("likes")[:5] if isinstance(x, str) and x.strip()],
        # One name a line (or ';' between): a name may hold a comma ("LeCun, Yann").
        authors=_split_list(_text(form, "authors"), r"[;\n]"),
        timezone=_text(form, "timezone").strip(),
        hour=_int(form.get("hour", ""), -1),
        size=_int(form.get("size", ""), 0),
        trending=_text(form, "trending").strip(),
    )
    errors = check_preferences(prefs, allowed_categories, need_interest=True)
    # What the form shows again keeps only the categories it offers.
    prefs.categories = [c for c in prefs.categories if c in allowed_categories]
    return prefs, errors
