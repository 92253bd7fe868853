"""What the e-mail templates see: plain view objects built from models, links and config.

Everything here is text for a template to escape (titles and abstracts come from feeds); URLs are
absolute and only ever http(s) (a feed cannot slip a `javascript:` link into a card).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from urllib.parse import quote, urlsplit

from newsletter import links
from newsletter.config import Config
from newsletter.models import Digest, Interest, InterestKind, Paper, Pick, Subscriber
from newsletter.render.latex import latex_to_text

# The longest a card shows each field from a feed (a title or name that long is a broken or
# hostile record, and one such card must not push the rest of the digest out of the e-mail).
CARD_TITLE_CHARS = 300
AUTHOR_NAME_CHARS = 100
CATEGORY_CHARS = 40
REASON_CHARS = 300
TLDR_CHARS = 240  # Hugging Face's AI summary is one sentence; a longer one is cut to a line
# The "Code" link is shown only for these hosts (and their www.): a feed's link under our label
# must not lead a reader to a site they cannot see before clicking.
CODE_HOSTS = frozenset(
    {
        "github.com",
        "gitlab.com",
        "huggingface.co",
        "bitbucket.org",
        "codeberg.org",
        "gitee.com",
        "git.sr.ht",
        "sourceforge.net",
    }
)
CODE_URL_CHARS = 300

_GITHUB_SLUG = re.compile(r"[\w.-]+/[\w.-]+")
_WS = re.compile(r"\s+")
# Control, format (bidi overrides, zero-width) and line/paragraph separators; ZWJ stays (emoji).
_CONTROL = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u00ad\u200b\u200c\u200e\u200f\u2028-\u202e\u2060-\u2069\ufeff]"
)


@dataclass(frozen=True)
class PaperView:
    """What every card of one paper shows, whoever gets it (computed once per paper)."""

    id: str
    title: str
    authors: str
    category: str
    stats: tuple[str, ...]  # '▲ 42 upvotes', '💬 3 comments', '★ 1,310 stars': counts above 0
    meta: str  # category and stats in one line: 'cs.CL · ▲ 42 upvotes · ★ 1,310 stars'
    excerpt: str
    tldr: str  # Hugging Face's one-sentence AI summary, '' when it gave none
    abs_url: str
    pdf_url: str
    hf_url: str
    code_url: str
    links: tuple[tuple[str, str], ...]  # (label, url) for the link row, only those that exist


@dataclass(frozen=True)
class CardView:
    """One paper as a card in one subscriber's digest."""

    number: int
    paper: PaperView
    reason: str  # why it matches, then its counts: 'matches: KV cache · ▲ 42 upvotes'
    like_url: str
    dislike_url: str
    trending: bool  # upvoted or discussed on Hugging Face

    def __getattr__(self, name: str) -> object:
        return getattr(self.paper, name)  # c.title, c.links, ... straight from the paper view


@lru_cache(maxsize=8192)
def readable(text: str) -> str:
    """LaTeX made readable, whitespace collapsed (cached: papers repeat across subscribers)."""
    return latex_to_text(text)


def one_line(text: str, limit: int = 0) -> str:
    """Text safe for a header: no control characters or line breaks, optionally shortened."""
    cleaned = _WS.sub(" ", _CONTROL.sub(" ", text)).strip()
    return shorten(cleaned, limit) if limit else cleaned


def shorten(text: str, limit: int) -> str:
    """Cut at a word boundary to at most `limit` characters, with an ellipsis when cut."""
    if limit <= 0:
        return ""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit * 0.6:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-–—(") + "…"


def short_authors(authors: tuple[str, ...], keep: int = 3) -> str:
    names = [one_line(a, AUTHOR_NAME_CHARS) for a in authors if a.strip()]
    if len(names) <= keep + 1:
        return ", ".join(names)
    return f"{', '.join(names[:keep])} + {len(names) - keep} more"


def code_url(repo: str) -> str:
    """The paper's code link when it is on a known code host (CODE_HOSTS), else ''.

    'owner/name' means GitHub. Anything else (another host, credentials or a port in the URL,
    a non-http scheme, an overlong link) is left out rather than shown under the "Code" label.
    """
    repo = repo.strip()
    if _GITHUB_SLUG.fullmatch(repo):
        return f"https://github.com/{repo}"
    if len(repo) > CODE_URL_CHARS or not re.match(r"https?://[^\s\"'<>\\]+$", repo):
        return ""
    try:
        parts = urlsplit(repo)
        port = parts.port
    except ValueError:
        return ""
    host = (parts.hostname or "").removeprefix("www.")
    if host not in CODE_HOSTS or port is not None or "@" in parts.netloc:
        return ""
    return repo


def paper_urls(paper: Paper) -> tuple[str, str]:
    """The arXiv abstract and PDF pages, built from the ID rather than trusted from a feed."""
    pid = quote(paper.id, safe="/.")
    return f"https://arxiv.org/abs/{pid}", f"https://arxiv.org/pdf/{pid}"


# Each count with its word as well as its glyph: a font without emoji shows '💬' as a box.
_COUNTS = (("▲", "upvote", "upvotes"), ("💬", "comment", "comments"), ("★", "star", "stars"))


def count_labels(paper: Paper) -> tuple[str, ...]:
    """'▲ 42 upvotes', '💬 1 comment', '★ 1,310 stars' for the counts above zero ('💬 0' says
    nothing a reader can use, and an unknown count is not a zero)."""
    values = (paper.upvotes, paper.comments, paper.github_stars)
    return tuple(
        f"{mark} {value:,} {one if value == 1 else many}"
        for (mark, one, many), value in zip(_COUNTS, values, strict=True)
        if value
    )


_RISE = ", up from "  # the late-rise figure of traction.Rise ("▲ 120, up from 8 yesterday")


def _figure_key(part: str) -> str:
    """'▲ 1,042 upvotes' and '▲ 1042' alike → '▲1042' (the glyph and the number); a longer
    part says more than the count ('▲ 120, up from 8 yesterday') and is its own key."""
    words = part.replace(",", "").split()
    return "".join(words[:2]) if 2 <= len(words) <= 3 and words[0] in "▲💬★" else part


def without_stats(reason: str, stats: tuple[str, ...]) -> str:
    """The ranker's reason minus the counts the card already shows ('▲ 42' twice is noise)
    and any zero count."""
    shown = {_figure_key(x) for x in stats} | {"▲0", "💬0", "★0"}
    parts = [p for p in reason.split(" · ") if _figure_key(p) not in shown]
    return " · ".join(parts)


@lru_cache(maxsize=8192)
def paper_view(paper: Paper, excerpt_chars: int) -> PaperView:
    """The subscriber-independent part of a card (cached: papers repeat across digests)."""
    abs_url, pdf_url = paper_urls(paper)
    stats = count_labels(paper)
    code = code_url(paper.github_repo)
    category = one_line(paper.primary_category, CATEGORY_CHARS)
    pairs = (("arXiv", abs_url), ("PDF", pdf_url), ("Hugging Face", paper.hf_url), ("Code", code))
    return PaperView(
        id=paper.id,
        title=shorten(readable(paper.title), CARD_TITLE_CHARS) or paper.id,
        authors=short_authors(paper.authors),
        category=category,
        stats=stats,
        meta=" · ".join(x for x in (category, *stats) if x),
        excerpt=shorten(readable(paper.abstract), excerpt_chars),
        tldr=shorten(one_line(readable(paper.ai_summary)), TLDR_CHARS),
        abs_url=abs_url,
        pdf_url=pdf_url,
        hf_url=paper.hf_url,
        code_url=code,
        links=tuple((label, url) for label, url in pairs if url),
    )


def card(
    cfg: Config,
    subscriber: Subscriber,
    number: int,
    pick: Pick,
    excerpt_chars: int,
    votes: bool = True,
) -> CardView:
    """A paper as the templates show it; `votes=False` leaves out the feedback links."""
    paper = pick.paper
    view = paper_view(paper, excerpt_chars)
    like, dislike = links.feedback_urls(cfg, subscriber, paper.id) if votes else ("", "")
    return CardView(
        number=number,
        paper=view,
        reason=card_reason(pick.reason, view.stats),
        like_url=like,
        dislike_url=dislike,
        trending=is_trending(paper),
    )


@lru_cache(maxsize=16384)
def card_reason(reason: str, stats: tuple[str, ...]) -> str:
    """The ranker's reason as a card shows it, then the paper's counts (cached: readers with
    the same interests get the same reasons)."""
    why = shorten(without_stats(one_line(reason), stats), REASON_CHARS)
    if _RISE in why:  # "▲ 120, up from 8 yesterday" already gives the upvotes
        stats = tuple(x for x in stats if not x.startswith("▲"))
    return " · ".join(x for x in (why, *stats) if x)


def is_trending(paper: Paper) -> bool:
    """Upvoted or discussed on Hugging Face (stars alone say a repository is popular, not that
    the paper is talked about today)."""
    return bool(paper.upvotes or paper.comments)


def trending_first(picks: list[Pick]) -> list[Pick]:
    """The picks that are trending, then the rest, each in the ranker's order."""
    return sorted(picks, key=lambda p: not is_trending(p.paper))


def sections(cards: list[CardView], personal: bool) -> list[tuple[str, list[CardView]]]:
    """(heading, cards) for the trending picks and the new ones nobody has upvoted yet. Without
    interests the picks are the day's most trending: named so, since the list of papers outside
    the picks that follows them is "Trending today"."""
    hot = [c for c in cards if c.trending]
    new = [c for c in cards if not c.trending]
    if personal:
        named = (("Trending in your topics", hot), ("New in your topics", new))
    else:
        named = (("Most trending today", hot), ("New today", new))
    return [(title, group) for title, group in named if group]


# Liked papers the interests line names one by one; more are counted ("1,204 liked papers"):
# an imported library can hold thousands, which would fill the e-mail (Gmail clips at ~102 KB,
# the unsubscribe links with it).
LIKES_NAMED = 3


def interests_line(interests: tuple[Interest, ...]) -> str:
    """The interests in one line: 'KV cache · cs.CL · like 2401.01234 · following Yann LeCun ·
    not: crypto'."""
    likes = sum(i.kind == InterestKind.LIKE for i in interests)
    counted = False  # the count of liked papers is in the line
    parts: list[str] = []

    def shown(value: str) -> str:  # only for what the line names: a library may hold 50,000
        return shorten(one_line(value), 48)

    for i in interests:
        if i.kind in {InterestKind.KEYWORD, InterestKind.TEXT, InterestKind.CATEGORY}:
            parts.append(shown(i.value))
        elif i.kind == InterestKind.LIKE:
            if likes <= LIKES_NAMED:
                parts.append(f"like {shown(i.value)}")
            elif not counted:
                parts.append(f"{likes:,} liked papers")
                counted = True
        elif i.kind == InterestKind.AUTHOR:
            parts.append(f"following {shown(i.value)}")
        elif i.kind == InterestKind.NOT_KEYWORD:
            parts.append(f"not: {shown(i.value)}")
    return " · ".join(parts)


@lru_cache(maxsize=64)
def long_date(day: date) -> str:
    return f"{day:%A} {day.day} {day:%B %Y}"


def top_title(digest: Digest) -> str:
    first = (digest.picks or digest.trending or (None,))[0]
    if first is None:
        return "no new matching papers today"
    return one_line(readable(first.paper.title) or first.paper.id)


def preheader(digest: Digest, cards: int) -> str:
    """The inbox preview line shown after the subject."""
    if not digest.picks:
        return one_line(digest.empty_reason or "No new papers matched your interests today.", 150)
    more = f" and {cards - 1} more picked for you" if cards > 1 else ", picked for you"
    return shorten(f"{top_title(digest)}{more}", 150)


@lru_cache(maxsize=16384)
def wrap(text: str, width: int = 78, indent: str = "", first: str | None = None) -> str:
    """Plain-text paragraph wrapped at `width` (first line starts with `first`, default
    `indent`); URLs and long words are never broken."""
    return fill(one_line(text), width, indent if first is None else first, indent)


def fill(line: str, width: int, first: str, indent: str) -> str:
    """`textwrap.fill(line, width, initial_indent=first, subsequent_indent=indent,
    break_long_words=False, break_on_hyphens=False)` for text that `one_line` has cleaned
    (words apart by single spaces), several times faster: every e-mail wraps its own
    footer and reasons. `tests/test_render_cards.py` compares the two."""
    if " " not in line:
        return first + line if line else ""
    words = line.split(" ")
    lines: list[str] = []
    prefix, room = first, width - len(first)
    current: list[str] = []
    used = 0
    for word in words:
        extra = len(word) + (1 if current else 0)
        if current and used + extra > room:
            lines.append(prefix + " ".join(current))
            prefix, room = indent, width - len(indent)
            current, used = [word], len(word)
        else:
            current.append(word)
            used += extra
    lines.append(prefix + " ".join(current))
    return "\n".join(lines)


def nowrap(label: str) -> str:
    """A control's label that never breaks between its words ('Hugging Face', without CSS)."""
    return label.replace(" ", "\u00a0")


def link_lines(pairs: tuple[tuple[str, str], ...], indent: str = "", width: int = 78) -> str:
    """`link_line` for each (label, url), one per line (cached: a paper's links repeat)."""
    return _link_lines(pairs, indent, width)


@lru_cache(maxsize=16384)
def _link_lines(pairs: tuple[tuple[str, str], ...], indent: str, width: int) -> str:
    return "\n".join(link_line(label, url, indent, width) for label, url in pairs)


def link_line(label: str, url: str, indent: str = "", width: int = 78) -> str:
    """'label: url' on one line when it fits, else the URL alone on the next line."""
    line = f"{indent}{label}: {url}"
    return line if len(line) <= width else f"{indent}{label}:\n{indent}{url}"
