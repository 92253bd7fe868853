"""Import a reader's library (BibTeX, RIS, CSL-JSON) as liked papers.

The file is read whole first (`sources.library`: an unreadable file changes nothing), the
papers not stored yet are fetched through the arXiv API, and then every like is added in one
transaction. The `ImportReport` says what was recognised and what was not, and why:
"12 entries: 9 arXiv papers liked (2 fetched), 3 without an arXiv ID".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from newsletter import pipeline
from newsletter.models import Interest, InterestKind, Subscriber
from newsletter.sources.library import parse_library

SHOWN = 5  # entries named in the report for each reason


def _plural(n: int, one: str, many: str = "") -> str:
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


@dataclass(frozen=True)
class ImportReport:
    format: str
    entries: int
    liked: tuple[str, ...] = ()  # newly liked paper IDs
    fetched: int = 0  # of those, fetched from arXiv now
    already: int = 0  # liked before
    twice: int = 0  # entries naming a paper an earlier entry of the file named
    declined: tuple[str, ...] = ()  # papers the reader marked "not for me": left so
    not_found: tuple[str, ...] = ()  # arXiv IDs arXiv does not know
    unfetched: tuple[str, ...] = ()  # not stored, and arXiv could not be asked (fetch_error)
    fetch_error: str = ""
    without_id: tuple[str, ...] = field(default=())  # labels of entries with no arXiv ID

    def line(self) -> str:
        """'12 entries: 9 arXiv papers liked (2 fetched), 3 without an arXiv ID'."""
        parts = [_plural(len(self.liked), "arXiv paper") + " liked"]
        if self.fetched:
            parts[0] += f" ({self.fetched:,} fetched)"
        if self.already:
            parts.append(f"{self.already:,} already liked")
        if self.twice:
            parts.append(f"{self.twice:,} listed twice")
        if self.declined:
            parts.append(f"{len(self.declined):,} marked not for you (left so)")
        if self.not_found:
            parts.append(f"{len(self.not_found):,} not found on arXiv")
        if self.unfetched:
            parts.append(f"{len(self.unfetched):,} not fetched (the arXiv API failed)")
        if self.without_id:
            parts.append(f"{len(self.without_id):,} without an arXiv ID")
        return f"{_plural(self.entries, 'entry', 'entries')} ({self.format}): " + ", ".join(parts)

    def details(self) -> list[str]:
        """Which entries were not liked, a few of each kind."""
        out = []
        if self.unfetched:
            out.append(
                f"the arXiv API failed ({self.fetch_error}) before "
                f"{_plural(len(self.unfetched), 'paper')} could be fetched: import the same "
                "file again later to add them"
            )
        for label, items in (
            ("marked not for you", self.declined),
            ("not found on arXiv", self.not_found),
            ("not fetched", self.unfetched),
            ("without an arXiv ID", self.without_id),
        ):
            if items:
                more = f" and {len(items) - SHOWN:,} more" if len(items) > SHOWN else ""
                out.append(f"{label}: " + "; ".join(items[:SHOWN]) + more)
        return out


def import_likes(ctx: pipeline.Context, subscriber: Subscriber, data: bytes) -> ImportReport:
    """Like every arXiv paper of the library export `data` for `subscriber`.

    Papers stored (or fetched now) are liked even when arXiv could not be asked for the
    rest; those are named in the report, and importing the file again adds them."""
    library = parse_library(data)
    store = ctx.store
    ids = [e.arxiv_id for e in library.entries if e.arxiv_id]
    wanted = list(dict.fromkeys(ids))
    interests = store.subscribers.interests_for(subscriber.id)
    known = {i.value for i in interests if i.kind == InterestKind.LIKE}
    # An explicit "not for me" stays: a library lists what was read, not always what was liked.
    refused = {i.value for i in interests if i.kind == InterestKind.NOT_PAPER}
    declined = tuple(pid for pid in wanted if pid in refused and pid not in known)
    new = [pid for pid in wanted if pid not in known and pid not in refused]
    have = store.papers.get_many(new)  # once: read for each ID, 5,000 IDs meant 25 M rows
    missing = [pid for pid in new if pid not in have]
    error = ""
    if missing:
        summary = pipeline.fetcher(ctx).ids(missing)
        error = summary.errors[0] if summary.errors else ""
    stored = store.papers.get_many(new)
    liked = tuple(pid for pid in new if pid in stored)
    if liked:  # one transaction: all of them or none
        store.subscribers.add_interests(
            subscriber.id, [Interest(InterestKind.LIKE, pid) for pid in liked], ctx.clock()
        )
    absent = tuple(pid for pid in new if pid not in stored)
    return ImportReport(
        format=library.format,
        entries=len(library.entries),
        liked=liked,
        fetched=sum(1 for pid in missing if pid in stored),
        already=sum(1 for pid in wanted if pid in known),
        twice=len(ids) - len(wanted),
        declined=declined,
        not_found=() if error else absent,
        unfetched=absent if error else (),
        fetch_error=error,
        without_id=tuple(e.label for e in library.entries if not e.arxiv_id),
    )
