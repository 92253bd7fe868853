"""The public site: day, week and month pages, paper pages with BibTeX, and search.

    GET /                          the latest announcement day
    GET /papers/YYYY-MM-DD         one day          GET /papers?day=YYYY-MM-DD   jump to a day
    GET /papers/week/YYYY-Www      one ISO week     GET /papers/month/YYYY-MM    one month
    GET /paper/<arXiv id>          a paper (a version suffix redirects to the bare id)
    GET /paper/<arXiv id>.bib      its BibTeX entry
    GET /search?q=…                search (an arXiv id or URL goes straight to its page)

Every page is read-only (GET and HEAD) and shows papers only, never anything about subscribers.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from newsletter.models import Paper, split_arxiv_id
from newsletter.ranking.search import highlight
from newsletter.render.views import long_date, paper_view, readable
from newsletter.web import catalog
from newsletter.web.bibtex import bibtex
from newsletter.web.catalog import BadRequest
from newsletter.web.core import WebContext

BANNER = "Get trending papers in your email inbox once a day!"


def site_routes(web: WebContext) -> list[Route]:
    pages = SitePages(web)
    get = ["GET", "HEAD"]
    return [
        Route("/", pages.home, methods=get),
        Route("/papers", pages.jump, methods=get),
        Route("/papers/week/{week}", pages.week, methods=get),
        Route("/papers/month/{month}", pages.month, methods=get),
        Route("/papers/{day}", pages.day, methods=get),
        Route("/paper/{pid:path}", pages.paper, methods=get),
        Route("/search", pages.search, methods=get),
    ]


class Card:
    """A paper as a site card: the e-mail card's view plus the full abstract and its day."""

    def __init__(self, paper: Paper, excerpt_chars: int) -> None:
        self.paper = paper
        self.view = paper_view(paper, excerpt_chars)
        self.abstract = readable(paper.abstract)
        self.day = paper.hf_date or paper.announced
        self.cut = self.view.excerpt != self.abstract


def subscribe_link(**prefill: str) -> str:
    """The subscribe form, prefilled (keywords, categories, likes) from a page."""
    query = urlencode({k: v for k, v in prefill.items() if v})
    return "/subscribe" + (f"?{query}" if query else "")


class SitePages:
    def __init__(self, web: WebContext) -> None:
        self.web = web
        self.cfg = web.cfg
        self.categories = tuple(web.cfg.sources.arxiv_categories)

    # ------------------------------------------------------------ helpers

    def _page(self, request: Request, template: str, status: int = 200, **ctx: Any) -> Response:
        ctx.setdefault("feeds", [])
        ctx.setdefault("subscribe_url", subscribe_link())
        ctx.setdefault("marks", lambda text: [(text, False)])
        ctx.setdefault("params", lambda **change: _with(request, **change))
        return self.web.render(
            request,
            template,
            status,
            banner=BANNER,
            categories=self.categories,
            long_date=long_date,
            **ctx,
        )

    def bad_request(self, request: Request, exc: BadRequest) -> Response:
        return self._page(request, "site_message.html", 400, title="Bad request", text=str(exc))

    def _cards(self, papers: list[Paper]) -> list[Card]:
        return [Card(p, self.cfg.digest.excerpt_chars) for p in papers]

    def _filters(self, request: Request, sorts: tuple[str, ...]) -> tuple[str, str, int]:
        q = request.query_params
        sort = q.get("sort") or sorts[0]
        if sort not in sorts:
            raise BadRequest(f"Sort by {' or '.join(sorts)}.")
        category = q.get("category", "")
        if category and category not in self.categories:
            raise BadRequest(f"Pick a category from: {', '.join(self.categories)}.")
        return sort, category, catalog.page_number(q.get("page"))

    # ------------------------------------------------------------ listings

    async def home(self, request: Request) -> Response:
        latest = self.web.store.papers.latest_day()
        if latest is None:
            return self._page(
                request,
                "site_message.html",
                title="No papers yet",
                text="Papers appear here after the first fetch (`newsletter fetch`).",
            )
        return await self._listing(request, latest, latest, "day")

    async def jump(self, request: Request) -> Response:
        raw = request.query_params.get("day", "")
        if not raw:
            return RedirectResponse("/", status_code=303)
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            return self.bad_request(request, BadRequest("A day looks like 2026-11-27."))
        return RedirectResponse(f"/papers/{day.isoformat()}", status_code=303)

    async def day(self, request: Request) -> Response:
        try:
            day = date.fromisoformat(request.path_params["day"])
        except ValueError:
            raise HTTPException(404) from None
        return await self._listing(request, day, day, "day")

    async def week(self, request: Request) -> Response:
        try:
            start, end = catalog.week_bounds(request.path_params["week"])
        except BadRequest as exc:
            return self.bad_request(request, exc)
        return await self._listing(request, start, end, "week")

    async def month(self, request: Request) -> Response:
        try:
            start, end = catalog.month_bounds(request.path_params["month"])
        except BadRequest as exc:
            return self.bad_request(request, exc)
        return await self._listing(request, start, end, "month")

    async def _listing(self, request: Request, start: date, end: date, span: str) -> Response:
        try:
            sort, category, page = self._filters(request, catalog.SORTS)
        except BadRequest as exc:
            return self.bad_request(request, exc)
        db = self.web.store
        result = await run_in_threadpool(
            catalog.listing, db, start, end, sort=sort, category=category, page=page
        )
        before = db.papers.neighbour_day(start, later=False)
        after = db.papers.neighbour_day(end, later=True)
        iso = start.isocalendar()
        nav = [_span_link(span, d) if d else None for d in (before, after)]
        feeds = [("Trending papers (Atom)", "/feeds/daily.atom")]
        if category:
            feeds.append((f"{category} papers (Atom)", f"/feeds/category/{category}.atom"))
        return self._page(
            request,
            "day.html",
            span=span,
            start=start,
            end=end,
            result=result,
            cards=self._cards(result.papers),
            sort=sort,
            category=category,
            before=before,
            after=after,
            before_link=nav[0],
            after_link=nav[1],
            week=f"{iso.year}-W{iso.week:02d}",
            month=f"{start:%Y-%m}",
            recent=db.papers.recent_days(30),
            base_path=request.url.path,
            feeds=feeds,
            subscribe_url=subscribe_link(categories=category),
        )

    # ------------------------------------------------------------ a paper

    async def paper(self, request: Request) -> Response:
        raw = str(request.path_params["pid"])
        as_bib = raw.endswith(".bib")
        raw = raw.removesuffix(".bib")
        try:
            pid, version = split_arxiv_id(raw)
        except ValueError:
            return self._missing(request, raw)
        if version is not None or pid != raw:
            return RedirectResponse(f"/paper/{pid}{'.bib' if as_bib else ''}", status_code=301)
        db = self.web.store
        paper = db.papers.get(pid)
        if paper is None:
            return self._missing(request, pid)
        if as_bib:
            headers = {"content-disposition": f'inline; filename="{pid}.bib"'}
            return Response(
                bibtex(paper), media_type="application/x-bibtex; charset=utf-8", headers=headers
            )
        similar = await run_in_threadpool(catalog.similar, db, paper)
        return self._page(
            request,
            "paper.html",
            card=Card(paper, self.cfg.digest.excerpt_chars),
            similar=self._cards(similar),
            bib=bibtex(paper),
            subscribe_url=subscribe_link(likes=pid),
        )

    def _missing(self, request: Request, raw: str) -> Response:
        return self._page(
            request,
            "site_message.html",
            404,
            title="Paper not found",
            text=f"No paper {raw[:40]!r} is stored here. Search for it by title or author:",
            search_box=True,
        )

    # ------------------------------------------------------------ search

    async def search(self, request: Request) -> Response:
        q = request.query_params
        try:
            query = catalog.check_query(q.get("q", ""))
            sort, category, page = self._filters(request, catalog.SEARCH_SORTS)
            start, end = catalog.date_range(q.get("from", ""), q.get("to", ""))
        except BadRequest as exc:
            return self.bad_request(request, exc)
        pid = catalog.arxiv_id_in(query)
        if pid:
            return RedirectResponse(f"/paper/{pid}", status_code=303)
        result = None
        if query:
            wanted = catalog.Search(query, sort, category, start, end, page)
            weight = self.cfg.digest.trending_weight
            result = await run_in_threadpool(
                catalog.search, self.web.store, wanted, trending_weight=weight
            )
        terms = result.terms if result else frozenset()
        return self._page(
            request,
            "search.html",
            query=query,
            result=result,
            cards=self._cards(result.papers) if result else [],
            sort=sort,
            category=category,
            start=start,
            end=end,
            marks=lambda text: highlight(text, terms),
            feeds=[(f"Search: {query} (Atom)", "/search.atom?" + urlencode({"q": query}))]
            if query
            else [],
            # The query becomes one keyword: a comma would split it, quotes add nothing there.
            subscribe_url=subscribe_link(keywords=query.replace(",", " ").replace('"', "")),
        )


def _span_link(span: str, day: date) -> tuple[str, str]:
    """(href, label) of the day, week or month holding `day`: the previous/next links."""
    if span == "week":
        iso = day.isocalendar()
        week = f"{iso.year}-W{iso.week:02d}"
        return f"/papers/week/{week}", week
    if span == "month":
        return f"/papers/month/{day:%Y-%m}", f"{day:%B %Y}"
    return f"/papers/{day.isoformat()}", day.isoformat()


def _with(request: Request, **change: object) -> str:
    """This page's query string with some parameters changed (None drops one)."""
    params = dict(request.query_params)
    for k, v in change.items():
        if v is None or v == "":
            params.pop(k, None)
        else:
            params[k] = str(v)
    return "?" + urlencode(params)
