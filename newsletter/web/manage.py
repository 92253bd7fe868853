"""Pages reached from a digest: manage preferences, 👍/👎 feedback with undo, digest preview."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from newsletter import links, pipeline
from newsletter.models import Subscriber, split_arxiv_id
from newsletter.preferences import Preferences, preferences_of, timezone_choices
from newsletter.subscriptions import resubscribe_url
from newsletter.tokens import TokenData, TokenError
from newsletter.web.core import WebContext
from newsletter.web.forms import parse_preferences
from newsletter.web.security import PREVIEW_CSP

RECENT_DIGESTS = 7


def manage_routes(web: WebContext) -> list[Route]:
    pages = DigestPages(web)
    return [
        Route("/manage/{token}", pages.manage, methods=["GET", "HEAD"]),
        Route("/manage/{token}", pages.save, methods=["POST"]),
        Route("/manage/{token}/pause", pages.pause, methods=["POST"]),
        Route("/manage/{token}/resume", pages.resume, methods=["POST"]),
        Route("/feedback/{token}", pages.feedback_page, methods=["GET", "HEAD"]),
        Route("/feedback/{token}", pages.feedback, methods=["POST"]),
        Route("/feedback/{token}/undo", pages.undo, methods=["POST"]),
        Route("/preview/{token}", pages.preview, methods=["GET", "HEAD"]),
    ]


class DigestPages:
    """The pages behind the links in every digest."""

    def __init__(self, web: WebContext) -> None:
        self.web = web
        self.cfg = web.cfg
        self._renderer: Any = None

    # ------------------------------------------------------------ manage

    def _categories(self, prefs: Preferences) -> tuple[str, ...]:
        """The operator's categories plus any the subscriber has (e.g. added with the CLI)."""
        return tuple(dict.fromkeys((*self.cfg.sources.arxiv_categories, *prefs.categories)))

    def _manage_page(
        self,
        request: Request,
        sub: Subscriber,
        prefs: Preferences | None = None,
        errors: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        store = self.web.store
        stored = preferences_of(sub, store.subscribers.interests_for(sub.id))
        prefs = prefs or stored
        return self.web.render(
            request,
            "manage.html",
            status,
            subscriber=sub,
            token=str(request.path_params["token"]),
            prefs=prefs,
            errors=errors or {},
            saved=request.query_params.get("saved") == "1" and not errors,
            categories=self._categories(stored),
            timezones=timezone_choices(),
            digests=self._recent_digests(sub),
            preview_url=links.preview_url(self.cfg, sub.id),
            unsubscribe_url=links.unsubscribe_url(self.cfg, sub.id),
            resubscribe_url=resubscribe_url(self.cfg, sub.id),
        )

    def _recent_digests(self, sub: Subscriber) -> list[dict[str, Any]]:
        store = self.web.store
        sends = store.sends.recently_sent(sub.id, limit=RECENT_DIGESTS)
        ids = [pid for send in sends for pid in send.paper_ids]
        papers = store.papers.get_many(list(dict.fromkeys(ids)))
        votes = {f.paper_id: f.vote for f in store.subscribers.feedback_for(sub.id)}
        digests = []
        for send in sends:
            items = []
            for pid in send.paper_ids:
                paper = papers.get(pid)
                items.append(
                    {
                        "id": pid,
                        "title": paper.title if paper and paper.title else f"arXiv:{pid}",
                        "url": (paper.abs_url if paper and paper.abs_url else "")
                        or f"https://arxiv.org/abs/{pid}",
                        "vote": votes.get(pid, 0),
                        "up": links.feedback_url(self.cfg, sub.id, pid, 1),
                        "down": links.feedback_url(self.cfg, sub.id, pid, -1),
                    }
                )
            digests.append({"date": send.digest_date.isoformat(), "papers": items})
        return digests

    async def manage(self, request: Request) -> Response:
        sub = self.web.subscriber(self.web.token(request, "manage"))
        return self._manage_page(request, sub)

    async def save(self, request: Request) -> Response:
        web = self.web
        sub = web.subscriber(web.token(request, "manage"))
        form = await web.form(request)
        web.check_csrf(request, form, f"manage:{sub.id}")
        stored = preferences_of(sub, web.store.subscribers.interests_for(sub.id))
        prefs, errors = parse_preferences(form, self._categories(stored))
        if errors:
            return self._manage_page(request, sub, prefs, errors, 400)
        web.subscriptions.save_preferences(sub, prefs)
        return web.redirect(f"/manage/{request.path_params['token']}?saved=1")

    async def _set_paused(self, request: Request, paused: bool) -> Response:
        web = self.web
        sub = web.subscriber(web.token(request, "manage"))
        form = await web.form(request)
        web.check_csrf(request, form, f"status:{sub.id}")
        if paused:
            web.subscriptions.pause(sub)
        else:
            web.subscriptions.resume(sub)
        return web.redirect(f"/manage/{request.path_params['token']}")

    async def pause(self, request: Request) -> Response:
        return await self._set_paused(request, True)

    async def resume(self, request: Request) -> Response:
        return await self._set_paused(request, False)

    # ------------------------------------------------------------ feedback

    def _vote(self, data: TokenData) -> tuple[str, int]:
        paper_id, vote = data.extra.get("p"), data.extra.get("v")
        if not isinstance(paper_id, str) or vote not in (1, -1) or isinstance(vote, bool):
            raise TokenError("This feedback link is not valid.")
        try:
            split_arxiv_id(paper_id)
        except ValueError:
            raise TokenError("This feedback link names no paper.") from None
        return paper_id, int(vote)

    def _feedback_page(
        self, request: Request, sub: Subscriber, paper_id: str, vote: int, state: str
    ) -> Response:
        """`state`: "asking" (GET: the button), "recorded" or "undone"."""
        paper = self.web.store.papers.get(paper_id)
        return self.web.render(
            request,
            "feedback.html",
            subscriber=sub,
            paper_id=paper_id,
            title=paper.title if paper and paper.title else f"arXiv:{paper_id}",
            vote=vote,
            asking=state == "asking",
            undone=state == "undone",
            token=str(request.path_params["token"]),
            again_url=links.feedback_url(self.cfg, sub.id, paper_id, vote),
            other_url=links.feedback_url(self.cfg, sub.id, paper_id, -vote),
            manage_url=links.manage_url(self.cfg, sub.id),
        )

    async def feedback_page(self, request: Request) -> Response:
        """Ask, recording nothing (link scanners fetch every link); `act.js` sends the form."""
        data = self.web.token(request, "feedback")
        paper_id, vote = self._vote(data)
        sub = self.web.subscriber(data)
        return self._feedback_page(request, sub, paper_id, vote, "asking")

    async def feedback(self, request: Request) -> Response:
        web = self.web
        data = web.token(request, "feedback")
        paper_id, vote = self._vote(data)
        sub = web.subscriber(data)
        web.store.subscribers.record_feedback(sub.id, paper_id, vote, web.clock())
        return self._feedback_page(request, sub, paper_id, vote, "recorded")

    async def undo(self, request: Request) -> Response:
        web = self.web
        data = web.token(request, "feedback")
        paper_id, vote = self._vote(data)
        sub = web.subscriber(data)
        form = await web.form(request)
        web.check_csrf(request, form, f"undo:{sub.id}:{paper_id}")
        current = {f.paper_id: f.vote for f in web.store.subscribers.feedback_for(sub.id)}.get(
            paper_id
        )
        if current == vote:  # a later, different vote is not this link's to undo
            web.store.subscribers.remove_feedback(sub.id, paper_id)
        return self._feedback_page(request, sub, paper_id, vote, "undone")

    # ------------------------------------------------------------ preview

    def _render_digest(self, sub: Subscriber) -> tuple[str, str]:
        """(html, "") for the digest due now, as `send` would send it, or ("", why none)."""
        ctx = self.web.pipeline
        day = pipeline.digest_date(self.cfg, ctx.clock())
        previews = pipeline.preview_digests(ctx, day, [sub])
        if not previews or not (previews[0].digest.picks or previews[0].digest.trending):
            reason = previews[0].digest.empty_reason if previews else ""
            return "", reason or "No new papers match your interests today."
        return previews[0].html, ""

    async def preview(self, request: Request) -> Response:
        web = self.web
        sub = web.subscriber(web.token(request, "preview"))
        html, reason = await run_in_threadpool(self._render_digest, sub)
        if not html:
            return web.message(
                request,
                "No digest today",
                f"{reason} Papers are fetched each morning; try again later, or widen your "
                "interests.",
                links=[(links.manage_url(self.cfg, sub.id), "Manage your preferences")],
            )
        response = HTMLResponse(html, headers={"cache-control": "no-store"})
        response.headers["content-security-policy"] = PREVIEW_CSP
        return response
