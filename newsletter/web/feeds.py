"""Atom 1.0 feeds of the public lists, and each subscriber's own picks as a private feed.

    GET /feeds/daily.atom               the latest day's trending papers
    GET /feeds/category/<cat>.atom      one arXiv category's trending papers of the last week
    GET /search.atom?q=…                the newest papers matching a search
    GET /feeds/picks/<token>            a subscriber's picks, with the reasons the e-mail gives

Every feed carries an ETag and Last-Modified and answers a matching conditional GET with 304.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from newsletter import pipeline
from newsletter.models import ARXIV_CATEGORY, Paper, Subscriber, SubscriberStatus, as_utc
from newsletter.render.views import one_line, readable, shorten
from newsletter.tokens import make_token
from newsletter.web import catalog
from newsletter.web.core import WebContext

ATOM = "application/atom+xml; charset=utf-8"
FEED_SIZE = 50
CATEGORY_DAYS = 7
# what XML 1.0 cannot hold even escaped (C0 controls but tab and line breaks, lone surrogates,
# U+FFFE/U+FFFF): a feed with one is not XML, and a reader drops the whole feed
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class Entry:
    id: str
    title: str
    updated: str
    url: str
    abs_url: str
    authors: tuple[str, ...]
    categories: tuple[str, ...]
    summary: str
    changed: datetime


def _stamp(paper: Paper) -> datetime:
    when = paper.updated or paper.first_seen
    if when is None:
        day = paper.hf_date or paper.announced or date(1970, 1, 1)
        when = datetime.combine(day, time(), UTC)
    return as_utc(when)


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def feed_url(web: WebContext, subscriber: Subscriber) -> str:
    """The private feed of a subscriber's picks: a signed link, shown on their manage page."""
    token = make_token(web.secret, "feed", subscriber.id, subscriber.nonce)
    return web.cfg.site.base_url.rstrip("/") + "/feeds/picks/" + token


def feed_routes(web: WebContext) -> list[Route]:
    feeds = Feeds(web)
    web.env.globals["picks_feed_url"] = lambda subscriber: feed_url(web, subscriber)
    get = ["GET", "HEAD"]
    return [
        Route("/feeds/daily.atom", feeds.daily, methods=get),
        Route("/feeds/category/{category}.atom", feeds.category, methods=get),
        Route("/search.atom", feeds.search, methods=get),
        Route("/feeds/picks/{token}", feeds.picks, methods=get),
    ]


class Feeds:
    def __init__(self, web: WebContext) -> None:
        self.web = web
        self.base = web.cfg.site.base_url.rstrip("/")

    def _entry(self, paper: Paper, reason: str = "") -> Entry:
        abstract = shorten(readable(paper.abstract), 1200)
        changed = _stamp(paper)
        return Entry(
            id=f"https://arxiv.org/abs/{paper.id}",
            title=one_line(readable(paper.title) or paper.id),
            updated=_iso(changed),
            url=f"{self.base}/paper/{paper.id}",
            abs_url=f"https://arxiv.org/abs/{paper.id}",
            authors=tuple(one_line(a) for a in paper.authors[:20] if a.strip()) or ("arXiv",),
            categories=tuple(one_line(c) for c in paper.categories),
            summary=f"{reason}\n\n{abstract}" if reason else abstract,
            changed=changed,
        )

    def _respond(self, request: Request, entries: list[Entry], **meta: Any) -> Response:
        changed = max((e.changed for e in entries), default=datetime(1970, 1, 1, tzinfo=UTC))
        changed = changed.replace(microsecond=0)
        body = self.web.env.get_template("feed.atom").render(
            site=self.web.cfg.site, entries=entries, updated=_iso(changed), **meta
        )
        body = NOT_XML.sub("", body)  # a search typed with a control character, say
        etag = '"' + hashlib.sha256(body.encode()).hexdigest()[:32] + '"'
        headers = {
            "etag": etag,
            "last-modified": format_datetime(changed, usegmt=True),
            "cache-control": meta.get("cache", "public, max-age=300"),
        }
        if _not_modified(request, etag, changed):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type=ATOM, headers=headers)

    async def daily(self, request: Request) -> Response:
        db = self.web.store
        latest = db.papers.latest_day()
        papers: list[Paper] = []
        if latest is not None:
            page = await run_in_threadpool(
                catalog.listing,
                db,
                latest,
                latest,
                sort="trending",
                category="",
                page=1,
                per_page=FEED_SIZE,
            )
            papers = page.papers
        return self._respond(
            request,
            [self._entry(p) for p in papers],
            feed_id=f"{self.base}/feeds/daily.atom",
            title=f"{self.web.cfg.site.name}: trending papers",
            subtitle="Each announcement day's papers, by upvotes, comments and GitHub stars.",
            self_url=f"{self.base}/feeds/daily.atom",
            page_url=f"{self.base}/",
        )

    async def category(self, request: Request) -> Response:
        cat = str(request.path_params["category"])
        if not ARXIV_CATEGORY.fullmatch(cat) or len(cat) > 30:
            raise HTTPException(404)
        db = self.web.store
        latest = db.papers.latest_day()
        papers: list[Paper] = []
        if latest is not None:
            start = latest - timedelta(days=CATEGORY_DAYS - 1)
            page = await run_in_threadpool(
                catalog.listing,
                db,
                start,
                latest,
                sort="trending",
                category=cat,
                page=1,
                per_page=FEED_SIZE,
            )
            papers = page.papers
        url = f"{self.base}/feeds/category/{cat}.atom"
        return self._respond(
            request,
            [self._entry(p) for p in papers],
            feed_id=url,
            title=f"{self.web.cfg.site.name}: trending in {cat}",
            subtitle=f"The week's {cat} papers by upvotes, comments and GitHub stars.",
            self_url=url,
            page_url=f"{self.base}/?{urlencode({'category': cat})}",
        )

    async def search(self, request: Request) -> Response:
        try:
            query = catalog.check_query(request.query_params.get("q", ""))
        except catalog.BadRequest as exc:
            raise HTTPException(400, str(exc)) from None
        if not query:
            raise HTTPException(400, "Add a search, e.g. /search.atom?q=diffusion")
        wanted = catalog.Search(query, sort="newest")
        page = await run_in_threadpool(catalog.search, self.web.store, wanted)
        qs = urlencode({"q": query})
        return self._respond(
            request,
            [self._entry(p) for p in page.papers],
            feed_id=f"{self.base}/search.atom?{qs}",
            title=f"{self.web.cfg.site.name}: {query}",
            subtitle=f"The newest papers matching {query}.",
            self_url=f"{self.base}/search.atom?{qs}",
            page_url=f"{self.base}/search?{qs}",
        )

    async def picks(self, request: Request) -> Response:
        web = self.web
        sub = web.subscriber(web.token(request, "feed"))
        if sub.status not in (SubscriberStatus.ACTIVE, SubscriberStatus.PAUSED):
            raise HTTPException(410, "This feed ended with the subscription.")
        ctx = web.pipeline
        day = pipeline.digest_date(web.cfg, ctx.clock())
        digests = await run_in_threadpool(pipeline.build_digests, ctx, day, [sub])
        entries = []
        if digests:
            digest = digests[0]
            entries = [self._entry(p.paper, p.reason) for p in (*digest.picks, *digest.trending)]
        url = str(request.url)
        response = self._respond(
            request,
            entries,
            feed_id=f"{self.base}/feeds/picks/{sub.id}",
            title=f"{web.cfg.site.name}: your picks",
            subtitle="The papers your daily e-mail picks for you, with the reasons.",
            self_url=url,
            page_url=f"{self.base}/",
            cache="private, max-age=300",
        )
        response.headers["x-robots-tag"] = "noindex"
        return response


def _not_modified(request: Request, etag: str, changed: datetime) -> bool:
    match = request.headers.get("if-none-match")
    if match is not None:
        return etag in [m.strip().removeprefix("W/") for m in match.split(",")] or match == "*"
    since = request.headers.get("if-modified-since")
    if since:
        try:
            return changed <= parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
    return False
