"""Subscriber preferences as the web forms show and submit them, validated with clear messages."""

from __future__ import annotations

import functools
import re
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from newsletter.models import Interest, InterestKind, Subscriber

MAX_KEYWORDS = 30
MAX_KEYWORD_CHARS = 100
MAX_DESCRIPTION_CHARS = 2000
SIZE_RANGE = (1, 50)
# Kept as they are when preferences are edited: they come from feedback or the CLI.
KEPT_KINDS = (InterestKind.LIKE, InterestKind.NOT_PAPER)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class FormLike(Protocol):
    def get(self, key: str, default: Any = None) -> Any: ...
    def getlist(self, key: str) -> list[Any]: ...


@dataclass
class Preferences:
    """What a subscriber asked for, in the shape of the form."""

    keywords: list[str] = field(default_factory=list)
    description: str = ""
    negatives: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    timezone: str = "UTC"
    hour: int = 7
    size: int = 10

    @property
    def keywords_text(self) -> str:
        return ", ".join(self.keywords)

    @property
    def negatives_text(self) -> str:
        return ", ".join(self.negatives)

    def interests(self, previous: Sequence[Interest] = ()) -> list[Interest]:
        """The interests these preferences stand for; kept kinds and weights carry over."""
        weights = {(i.kind, i.value): i.weight for i in previous}
        wanted: list[tuple[InterestKind, str]] = [
            *((InterestKind.KEYWORD, k) for k in self.keywords),
            *((InterestKind.TEXT, p) for p in _paragraphs(self.description)),
            *((InterestKind.CATEGORY, c) for c in self.categories),
            *((InterestKind.NOT_KEYWORD, n) for n in self.negatives),
        ]
        kept = [i for i in previous if i.kind in KEPT_KINDS]
        return [Interest(k, v, weights.get((k, v), 1.0)) for k, v in wanted] + kept


def _paragraphs(text: str) -> list[str]:
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]


@functools.cache
def timezone_choices() -> tuple[str, ...]:
    """IANA zone names worth offering in a list (no legacy or posix/ aliases)."""
    zones = {
        z
        for z in zoneinfo.available_timezones()
        if "/" in z and not z.startswith(("posix/", "right/", "Etc/", "SystemV/", "US/"))
    }
    return ("UTC", *sorted(zones))


def valid_timezone(name: str) -> bool:
    if not name or len(name) > 64 or name.startswith(("/", ".")) or ".." in name:
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def preferences_of(subscriber: Subscriber, interests: list[Interest]) -> Preferences:
    """The stored subscriber and interests, in the shape of the form."""

    def values(kind: InterestKind) -> list[str]:
        return [i.value for i in interests if i.kind == kind]

    return Preferences(
        keywords=values(InterestKind.KEYWORD),
        description="\n\n".join(values(InterestKind.TEXT)),
        negatives=values(InterestKind.NOT_KEYWORD),
        categories=values(InterestKind.CATEGORY),
        timezone=subscriber.timezone,
        hour=subscriber.delivery_hour,
        size=subscriber.digest_size,
    )


def _split_list(raw: str, label: str, errors: dict[str, str], key: str) -> list[str]:
    items: dict[str, str] = {}
    for part in re.split(r"[,;\n]", raw):
        item = " ".join(part.split())
        if not item:
            continue
        if len(item) > MAX_KEYWORD_CHARS:
            errors[key] = f"Each {label} can be at most {MAX_KEYWORD_CHARS} characters long."
        items.setdefault(item.casefold(), item)
    if len(items) > MAX_KEYWORDS:
        errors[key] = f"Please list at most {MAX_KEYWORDS} {label}s."
    return list(items.values())


def _int_field(
    raw: Any, low: int, high: int, message: str, errors: dict[str, str], key: str
) -> int:
    try:
        value = int(str(raw).strip())
    except ValueError:
        errors[key] = message
        return low
    if not low <= value <= high:
        errors[key] = message
    return value


def _text(form: FormLike, key: str) -> str:
    value = form.get(key, "")
    return _CONTROL.sub("", value) if isinstance(value, str) else ""


def parse_preferences(
    form: FormLike, allowed_categories: tuple[str, ...] | list[str]
) -> tuple[Preferences, dict[str, str]]:
    """Read the preference fields of a submitted form; errors maps field name -> message."""
    errors: dict[str, str] = {}
    keywords = _split_list(_text(form, "keywords"), "keyword", errors, "keywords")
    negatives = _split_list(_text(form, "negatives"), "keyword to avoid", errors, "negatives")
    description = _text(form, "description").strip()
    if len(description) > MAX_DESCRIPTION_CHARS:
        errors["description"] = (
            f"The description can be at most {MAX_DESCRIPTION_CHARS} characters long "
            f"(it has {len(description)})."
        )
    categories = [c for c in form.getlist("categories") if isinstance(c, str)]
    unknown = [c for c in categories if c not in allowed_categories]
    if unknown:
        errors["categories"] = f"Unknown category {unknown[0][:20]!r}: pick from the list."
    categories = [c for c in dict.fromkeys(categories) if c in allowed_categories]
    tz = _text(form, "timezone").strip()
    if not valid_timezone(tz):
        errors["timezone"] = "Pick a time zone from the list, e.g. Europe/Berlin."
    hour = _int_field(
        form.get("hour", ""), 0, 23, "Pick a delivery hour between 0 and 23.", errors, "hour"
    )
    size = _int_field(
        form.get("size", ""),
        *SIZE_RANGE,
        f"The digest size must be between {SIZE_RANGE[0]} and {SIZE_RANGE[1]} papers.",
        errors,
        "size",
    )
    if not (keywords or description or categories) and "keywords" not in errors:
        errors["keywords"] = (
            "Tell us what to look for: at least one keyword, a description or a category."
        )
    prefs = Preferences(keywords, description, negatives, categories, tz, hour, size)
    return prefs, errors
