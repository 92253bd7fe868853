"""Plain dataclasses shared by every stage. No I/O here."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum

# An arXiv category as written ("cs.LG", "stat.ML", "hep-th"); use it with fullmatch.
ARXIV_CATEGORY = re.compile(r"[a-z-]+(\.[A-Za-z-]+)?")
_ARXIV_ID = re.compile(
    r"(?:arxiv:|https?://(?:export\.)?arxiv\.org/(?:abs|pdf)/)?"
    r"(?P<id>\d{4}\.\d{4,5}|[a-z\-]+(?:\.[A-Z]{2})?/\d{7})(?:v(?P<v>\d+))?(?:\.pdf)?$",
    re.IGNORECASE,
)


def as_utc(when: datetime) -> datetime:
    """`when` with a time zone: one written without (by hand, or by an older tool) is UTC, as
    every time the store writes is."""
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def split_arxiv_id(raw: str) -> tuple[str, int | None]:
    """'arXiv:2401.01234v3' or an abs/pdf URL → ('2401.01234', 3). Raises ValueError."""
    m = _ARXIV_ID.search(raw.strip())
    if not m:
        raise ValueError(f"not an arXiv identifier: {raw!r}")
    return m.group("id"), (int(m.group("v")) if m.group("v") else None)


class SharedText(str):
    """Text that many e-mails carry word for word (a paper's card in every digest that picks
    it), so what is derived from it, such as its quoted-printable encoding, is worth keeping."""

    __slots__ = ()


class SubscriberStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    PAUSED = "paused"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"


class InterestKind(StrEnum):
    KEYWORD = "keyword"  # a keyword or phrase
    TEXT = "text"  # a free-text description of what they want
    CATEGORY = "category"  # an arXiv category, e.g. cs.CL
    LIKE = "like"  # a liked paper (arXiv ID): positive example
    NOT_KEYWORD = "not_keyword"  # a negative keyword
    NOT_PAPER = "not_paper"  # a disliked paper (arXiv ID): negative example
    AUTHOR = "author"  # a followed author's name, e.g. "Yann LeCun"


class SendStatus(StrEnum):
    CLAIMED = "claimed"  # being sent by a run right now (or the run crashed mid-send)
    SENT = "sent"
    RETRY = "retry"  # temporary failure: the next run tries again
    FAILED = "failed"  # permanent failure (5xx)
    SKIPPED = "skipped"  # nothing to send (recorded so status can say why)


@dataclass(frozen=True)
class Paper:
    id: str  # arXiv ID without version, e.g. "2401.01234"
    title: str = ""
    abstract: str = ""
    authors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()  # primary first
    version: int | None = None
    announce_type: str = ""  # new | cross | replace | replace-cross
    announced: date | None = None  # arXiv announcement date (US Eastern)
    published: datetime | None = None
    abs_url: str = ""
    pdf_url: str = ""
    upvotes: int | None = None
    comments: int | None = None
    github_repo: str = ""
    github_stars: int | None = None
    ai_keywords: tuple[str, ...] = ()
    ai_summary: str = ""
    hf_date: date | None = None  # the Hugging Face Daily Papers day it was listed on
    sources: tuple[str, ...] = ()  # e.g. ("arxiv_rss", "huggingface")
    journal_ref: str = ""
    doi: str = ""
    first_seen: datetime | None = None
    updated: datetime | None = None

    @property
    def primary_category(self) -> str:
        return self.categories[0] if self.categories else ""

    @property
    def hf_url(self) -> str:
        return f"https://huggingface.co/papers/{self.id}" if "huggingface" in self.sources else ""


@dataclass(frozen=True)
class Subscriber:
    id: int
    email: str
    name: str = ""
    status: SubscriberStatus = SubscriberStatus.PENDING
    timezone: str = "UTC"
    delivery_hour: int = 7
    digest_size: int = 10
    created_at: datetime | None = None
    confirmed_at: datetime | None = None
    nonce: str = ""  # random per row: links carry it, so they die with the row
    legacy_links: bool = False  # the row predates nonces: links without one still work
    trending_mix: str = ""  # more personal ↔ more trending ('' : the operator's setting)


@dataclass(frozen=True)
class Interest:
    kind: InterestKind
    value: str
    weight: float = 1.0
    subscriber_id: int | None = None
    id: int | None = None
    # When it was added (as stored; None when made in code): not part of what it is.
    created_at: datetime | None = field(default=None, compare=False)


@dataclass(frozen=True)
class SignupRequest:
    """A sign-up, or a request to come back, waiting for the owner's click on the confirmation
    link that names it. `interests` is None when the stored settings stay as they are;
    otherwise the name (when not empty), time zone, hour, size and interests replace them."""

    id: int
    subscriber_id: int
    created_at: datetime | None = None
    name: str = ""
    timezone: str | None = None
    delivery_hour: int | None = None
    digest_size: int | None = None
    interests: tuple[Interest, ...] | None = None


@dataclass(frozen=True)
class Feedback:
    subscriber_id: int
    paper_id: str
    vote: int  # +1 or -1
    created_at: datetime | None = None


@dataclass(frozen=True)
class Pick:
    paper: Paper
    score: float
    reason: str = ""  # "matches: KV cache, quantization · ▲ 42 · ★ 310"
    matched: tuple[str, ...] = ()


@dataclass(frozen=True)
class Digest:
    subscriber: Subscriber
    date: date
    picks: tuple[Pick, ...] = ()
    trending: tuple[Pick, ...] = ()
    interests: tuple[Interest, ...] = ()
    empty_reason: str = ""  # why there are no picks, when there are none
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def paper_ids(self) -> tuple[str, ...]:
        return tuple(p.paper.id for p in (*self.picks, *self.trending))


@dataclass(frozen=True)
class Send:
    """One row of the send ledger: a subscriber's digest for one date and what became of it."""

    subscriber_id: int
    digest_date: date
    status: SendStatus
    attempts: int = 0
    message_id: str = ""  # "" until a message was built for the row (a skipped day has none)
    paper_ids: tuple[str, ...] = ()  # what was sent, in digest order
    error: str = ""  # the last failure or the reason for a skip
    claimed_at: datetime | None = None
    sent_at: datetime | None = None
    updated_at: datetime | None = None
    id: int | None = None


@dataclass(frozen=True)
class Bounce:
    """A bounced address with the last permanent error it got."""

    subscriber_id: int
    email: str
    hard_failures: int
    bounced_at: datetime | None = None
    last_error: str = ""


@dataclass(frozen=True)
class Run:
    """One fetch or send run: started, and (unless it crashed) finished with an outcome."""

    id: int
    kind: str  # fetch | send | ...
    started_at: datetime
    finished_at: datetime | None = None
    outcome: str = ""  # "" while running, or when the run died without finishing
    summary: str = ""


@dataclass(frozen=True)
class FetchState:
    """What the last fetches of one URL left behind: validators for a conditional GET, errors."""

    url: str
    source: str
    etag: str | None = None
    last_modified: str | None = None
    last_success: datetime | None = None
    last_count: int | None = None
    last_error: str = ""
    last_error_at: datetime | None = None
