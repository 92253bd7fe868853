"""What a reader asks for, and the one validation rule the CLI and the web share.

`normalize_address` decides whether an e-mail address can be used; `Preferences` is what a
reader asked for, whether it came from a web form or command-line flags, and
`check_preferences` says what is wrong with it, field by field, in words a reader understands.
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass, field

from email_validator import EmailNotValidError, validate_email

from newsletter.errors import InvalidAddressError, NewsletterError
from newsletter.models import ARXIV_CATEGORY, Interest, InterestKind, Subscriber, split_arxiv_id
from newsletter.ranking.authors import parse_name

MAX_KEYWORDS = 30
MAX_KEYWORD_CHARS = 100
MAX_DESCRIPTION_CHARS = 2000
MAX_NAME_CHARS = 100
MAX_AUTHORS = 30
SIZE_RANGE = (1, 50)
# Kept as they are when preferences are edited: they come from feedback or the CLI.
KEPT_KINDS = (InterestKind.LIKE, InterestKind.NOT_PAPER)
# A reader's blend of trending and relevance, most personal first; '' follows the operator.
TRENDING_MIXES = {
    "personal": "Most personal: only how well a paper matches my interests",
    "more-personal": "More personal",
    "": "The site's mix (default)",
    "more-trending": "More trending",
    "trending": "Most trending: what Hugging Face readers upvote and discuss",
}
SITE_MIX = "site"  # what the CLI calls the '' mix
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class InvalidPreferences(NewsletterError):
    """What a reader asked for does not pass `check_preferences`; `errors` maps field → why."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def normalize_address(raw: str) -> str:
    """Return the normalised address, or raise InvalidAddressError saying what is wrong.

    An address passes only if the mailer can write it into a To: header too (the same
    `header_address` every message goes through), so no stored address is refused at send."""
    from newsletter.delivery.mime import RefusedMessage, header_address  # only when checking

    text = raw.strip()
    if not text:
        raise InvalidAddressError("the e-mail address is empty")
    if any(c in text for c in "\r\n\t"):
        raise InvalidAddressError("the e-mail address contains a line break or tab")
    if len(text) > 254:
        raise InvalidAddressError("the e-mail address is longer than 254 characters")
    local, at, _ = text.rpartition("@")
    if at and not local.isascii():
        odd = "".join(dict.fromkeys(c for c in local if not c.isascii()))
        raise InvalidAddressError(
            f"we cannot send e-mail to {text!r}: the part before the @ contains {odd!r}, and "
            "this newsletter can only mail addresses that are plain ASCII before the @ "
            "(SMTPUTF8 is not supported); please use another address"
        )
    try:
        info = validate_email(text, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise InvalidAddressError(f"{text!r} is not a valid e-mail address: {exc}") from None
    address = str(info.normalized)
    try:
        header_address(address)
    except RefusedMessage as exc:
        raise InvalidAddressError(f"we cannot send e-mail to {text!r}: {exc}") from None
    return address


def address_for_lookup(raw: str) -> str:
    """The form an address is stored in, for finding a subscriber: `normalize_address`, or the
    text as typed when that refuses it (an address stored before the rule was this strict must
    still be found, e.g. to unsubscribe it)."""
    try:
        return normalize_address(raw)
    except InvalidAddressError:
        return raw.strip()


@dataclass
class Preferences:
    """What a subscriber asked for: the web form's fields, or the CLI's flags."""

    keywords: list[str] = field(default_factory=list)
    description: str = ""
    negatives: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    likes: list[str] = field(default_factory=list)  # arXiv IDs
    authors: list[str] = field(default_factory=list)  # followed authors, e.g. "Yann LeCun"
    timezone: str = "UTC"
    hour: int = 7
    size: int = 10
    name: str = ""
    trending: str = ""  # a TRENDING_MIXES key

    @property
    def keywords_text(self) -> str:
        return ", ".join(self.keywords)

    @property
    def negatives_text(self) -> str:
        return ", ".join(self.negatives)

    @property
    def authors_text(self) -> str:
        return "\n".join(self.authors)  # one a line: names may hold commas ("LeCun, Yann")

    def interests(self, previous: Sequence[Interest] = ()) -> list[Interest]:
        """The interests these preferences stand for; kept kinds and weights carry over."""
        wanted: list[tuple[InterestKind, str]] = [
            *((InterestKind.KEYWORD, k) for k in self.keywords),
            *((InterestKind.TEXT, p) for p in paragraphs(self.description)),
            *((InterestKind.CATEGORY, c) for c in self.categories),
            *((InterestKind.NOT_KEYWORD, n) for n in self.negatives),
            *((InterestKind.AUTHOR, " ".join(a.split())) for a in self.authors),
            *((InterestKind.LIKE, _paper_id(p)) for p in self.likes),
        ]
        return carry_over([Interest(k, v) for k, v in wanted], previous)


def carry_over(wanted: Sequence[Interest], previous: Sequence[Interest]) -> list[Interest]:
    """`wanted` replacing `previous`: weights of the interests in both carry over, and liked
    and disliked papers (they come from feedback or the CLI) stay."""
    weights = {(i.kind, i.value): i.weight for i in previous}
    seen = {(i.kind, i.value) for i in wanted}
    kept = [i for i in previous if i.kind in KEPT_KINDS and (i.kind, i.value) not in seen]
    fresh = [Interest(i.kind, i.value, weights.get((i.kind, i.value), i.weight)) for i in wanted]
    return fresh + kept


def _paper_id(raw: str) -> str:
    """'arXiv:2401.01234v2' → '2401.01234'; what `check_preferences` refuses stays as typed."""
    try:
        return split_arxiv_id(raw)[0]
    except ValueError:
        return raw.strip()


def paragraphs(text: str) -> list[str]:
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]


def preferences_of(subscriber: Subscriber, interests: Sequence[Interest]) -> Preferences:
    """The stored subscriber and interests, in the shape of `Preferences` (likes excluded:
    they are kept as they are when preferences are edited)."""

    def values(kind: InterestKind) -> list[str]:
        return [i.value for i in interests if i.kind == kind]

    return Preferences(
        keywords=values(InterestKind.KEYWORD),
        description="\n\n".join(values(InterestKind.TEXT)),
        negatives=values(InterestKind.NOT_KEYWORD),
        categories=values(InterestKind.CATEGORY),
        authors=values(InterestKind.AUTHOR),
        timezone=subscriber.timezone,
        hour=subscriber.delivery_hour,
        size=subscriber.digest_size,
        name=subscriber.name,
        trending=subscriber.trending_mix,
    )


def trending_weight(mix: str, site_weight: float) -> float:
    """The trending weight a reader's mix stands for, around the operator's `site_weight`
    (relevance × (1 + weight × trending)); the trending steps add some even when it is 0."""
    steps = {
        "personal": 0.0,
        "more-personal": site_weight / 2,
        "more-trending": max(2 * site_weight, site_weight + 0.5),
        "trending": max(5 * site_weight, site_weight + 2.0),
    }
    return steps.get(mix, site_weight)


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


def _check_lists(prefs: Preferences, errors: dict[str, str]) -> None:
    for key, label, items in (
        ("keywords", "keyword", prefs.keywords),
        ("negatives", "keyword to avoid", prefs.negatives),
    ):
        if any(not i.strip() for i in items):
            errors[key] = f"A {label} must not be empty."
        elif any(len(i) > MAX_KEYWORD_CHARS for i in items):
            errors[key] = f"Each {label} can be at most {MAX_KEYWORD_CHARS} characters long."
        elif len(items) > MAX_KEYWORDS:
            errors[key] = f"Please list at most {MAX_KEYWORDS} {label}s."


def _check_authors(prefs: Preferences, errors: dict[str, str]) -> None:
    """A followed author needs a given name (or initial) and a surname, on one line."""
    if len(prefs.authors) > MAX_AUTHORS:
        errors["authors"] = f"Please follow at most {MAX_AUTHORS} authors."
    for raw in prefs.authors:
        shown = raw.strip()[:40]
        if _CONTROL.search(raw) or len(raw) > MAX_NAME_CHARS:
            errors["authors"] = (
                f"Each author's name must be one line of at most {MAX_NAME_CHARS} characters."
            )
        elif parse_name(raw) is None:
            errors["authors"] = (
                f"{shown!r} is not a full name: write a first name (or initial) and a surname, "
                "such as Yann LeCun, Y. LeCun or LeCun, Yann."
            )


def _check_categories(
    prefs: Preferences, allowed: Sequence[str] | None, errors: dict[str, str]
) -> None:
    for cat in prefs.categories:
        if allowed is not None and cat not in allowed:
            errors["categories"] = f"Unknown category {cat[:20]!r}: pick from the list."
        elif not ARXIV_CATEGORY.fullmatch(cat):
            errors["categories"] = f"{cat[:20]!r} is not an arXiv category such as cs.CL."


def _check_delivery(prefs: Preferences, errors: dict[str, str]) -> None:
    if not valid_timezone(prefs.timezone):
        errors["timezone"] = (
            f"Pick a time zone such as Europe/Berlin ({prefs.timezone[:40]!r} is not an IANA "
            "timezone)."
        )
    if not 0 <= prefs.hour <= 23:
        errors["hour"] = "Pick a delivery hour between 0 and 23."
    low, high = SIZE_RANGE
    if not low <= prefs.size <= high:
        errors["size"] = f"The digest size must be between {low} and {high} papers."
    if prefs.trending not in TRENDING_MIXES:
        names = ", ".join(k or SITE_MIX for k in TRENDING_MIXES)
        errors["trending"] = (
            f"Pick how personal your digest is, from the most personal to the most trending: "
            f"{names} ({prefs.trending[:20]!r} is not one of them)."
        )


def check_preferences(
    prefs: Preferences,
    allowed_categories: Sequence[str] | None = None,
    *,
    need_interest: bool = False,
) -> dict[str, str]:
    """Validate what a reader asked for; returns field name → message (empty when valid).

    `allowed_categories` restricts the categories to a list (the web form's choices); the
    CLI passes None and any well-formed arXiv category is accepted. No interest at all is
    valid (the reader gets the day's trending papers); the web form sets `need_interest`,
    because an empty sign-up form is almost always a slip."""
    errors: dict[str, str] = {}
    _check_lists(prefs, errors)
    if len(prefs.description) > MAX_DESCRIPTION_CHARS:
        errors["description"] = (
            f"The description can be at most {MAX_DESCRIPTION_CHARS} characters long "
            f"(it has {len(prefs.description)})."
        )
    _check_categories(prefs, allowed_categories, errors)
    _check_authors(prefs, errors)
    for raw in prefs.likes:
        try:
            split_arxiv_id(raw)
        except ValueError as exc:
            errors["likes"] = str(exc)
    _check_delivery(prefs, errors)
    if _CONTROL.search(prefs.name) or len(prefs.name) > MAX_NAME_CHARS:
        errors["name"] = f"The name must be one line of at most {MAX_NAME_CHARS} characters."
    wants = prefs.keywords or prefs.description or prefs.categories or prefs.likes
    if need_interest and not (wants or prefs.authors):
        errors.setdefault(
            "keywords",
            "Tell us what to look for: at least one keyword, a description, a category or an "
            "author to follow.",
        )
    return errors
