"""Pages reached from a digest: manage preferences, 👍/👎 feedback with undo, digest preview."""

from __future__ import annotations

import re
from datetime import date
from html import escape
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from newsletter import links, pipeline
from newsletter.imports import ImportReport
from newsletter.models import Subscriber, split_arxiv_id
from newsletter.preferences import (
    TRENDING_MIXES,
    Preferences,
    preferences_of,
    timezone_choices,
)
from newsletter.render.views import long_date
from newsletter.subscriptions import resubscribe_url
from newsletter.tokens import TokenData, TokenError
from newsletter.web.core import WebContext
from newsletter.web.forms import parse_preferences
from newsletter.web.library import LibraryUpload
from newsletter.web.security import PREVIEW_CSP

RECENT_DIGESTS = 7


def manage_routes(web: WebContext) -> list[Route]:
    pages = DigestPages(web)
    upload = LibraryUpload(web, pages.manage_page)
    return [
        Route("/manage/{token}/import", upload.endpoint, methods=["POST"]),
        Route("/manage/{token}", pages.manage, methods=["GET", "HEAD"]),
        Route("/manage/{token}", web.with_form(pages.save), methods=["POST"]),
        Route("/manage/{token}/pause", web.with_form(pages.pause), methods=["POST"]),
        Route("/manage/{token}/resume", web.with_form(pages.resume), methods=["POST"]),
        Route("/feedback/{token}", pages.feedback_page, methods=["GET", "HEAD"]),
        Route("/feedback/{token}", pages.feedback, methods=["POST"]),
        Route("/feedback/{token}/undo", web.with_form(pages.undo), methods=["POST"]),
        Route("/preview/{token}", pages.preview, methods=["GET", "HEAD"]),
    ]


class DigestPages:
    """The pages behind the links in every digest (plain functions: they run in a thread)."""

    def __init__(self, web: WebContext) -> None:
        self.web = web
        self.cfg = web.cfg
        self._renderer: Any = None

    # ------------------------------------------------------------ manage

    def _categories(self, prefs: Preferences) -> tuple[str, ...]:
        """The operator's categories plus any the subscriber has (e.g. added with the CLI)."""
        return tuple(dict.fromkeys((*self.cfg.sources.arxiv_categories, *prefs.categories)))

    def manage_page(
        self,
        request: Request,
        sub: Subscriber,
        prefs: Preferences | None = None,
        errors: dict[str, str] | None = None,
        status: int = 200,
        *,
        imported: ImportReport | None = None,
        library_error: str = "",
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
            trending_mixes=TRENDING_MIXES,
            digests=self._recent_digests(sub),
            preview_url=links.preview_url(self.cfg, sub),
            unsubscribe_url=links.unsubscribe_url(self.cfg, sub),
            resubscribe_url=resubscribe_url(self.cfg, sub),
            imported=imported,
            library_error=library_error,
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
                up, down = links.feedback_urls(self.cfg, sub, pid)
                items.append(
                    {
                        "id": pid,
                        "title": paper.title if paper and paper.title else f"arXiv:{pid}",
                        "url": (paper.abs_url if paper and paper.abs_url else "")
                        or f"https://arxiv.org/abs/{pid}",
                        "vote": votes.get(pid, 0),
                        "up": up,
                        "down": down,
                    }
                )
            digests.append({"date": send.digest_date.isoformat(), "papers": items})
        return digests

    def manage(self, request: Request) -> Response:
        sub = self.web.subscriber(self.web.token(request, "manage"))
        return self.manage_page(request, sub)

    def save(self, request: Request, form: FormData) -> Response:
        web = self.web
        sub = web.subscriber(web.token(request, "manage"))
        web.check_csrf(request, form, f"manage:{sub.id}")
        stored = preferences_of(sub, web.store.subscribers.interests_for(sub.id))
        prefs, errors = parse_preferences(form, self._categories(stored))
        if errors:
            return self.manage_page(request, sub, prefs, errors, 400)
        web.subscriptions.save_preferences(sub, prefs)
        return web.redirect(f"/manage/{request.path_params['token']}?saved=1")

    def _set_paused(self, request: Request, form: FormData, paused: bool) -> Response:
        web = self.web
        sub = web.subscriber(web.token(request, "manage"))
        web.check_csrf(request, form, f"status:{sub.id}")
        if paused:
            web.subscriptions.pause(sub)
        else:
            web.subscriptions.resume(sub)
        return web.redirect(f"/manage/{request.path_params['token']}")

    def pause(self, request: Request, form: FormData) -> Response:
        return self._set_paused(request, form, True)

    def resume(self, request: Request, form: FormData) -> Response:
        return self._set_paused(request, form, False)

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
            again_url=links.feedback_url(self.cfg, sub, paper_id, vote),
            other_url=links.feedback_url(self.cfg, sub, paper_id, -vote),
            manage_url=links.manage_url(self.cfg, sub),
        )

    def feedback_page(self, request: Request) -> Response:
        """Ask, recording nothing (link scanners fetch every link); `act.js` sends the form."""
        data = self.web.token(request, "feedback")
        paper_id, vote = self._vote(data)
        sub = self.web.subscriber(data)
        return self._feedback_page(request, sub, paper_id, vote, "asking")

    def feedback(self, request: Request) -> Response:
        web = self.web
        data = web.token(request, "feedback")
        paper_id, vote = self._vote(data)
        sub = web.subscriber(data)
        web.store.subscribers.record_feedback(sub.id, paper_id, vote, web.clock())
        return self._feedback_page(request, sub, paper_id, vote, "recorded")

    def undo(self, request: Request, form: FormData) -> Response:
        web = self.web
        data = web.token(request, "feedback")
        paper_id, vote = self._vote(data)
        sub = web.subscriber(data)
        web.check_csrf(request, form, f"undo:{sub.id}:{paper_id}")
        current = {f.paper_id: f.vote for f in web.store.subscribers.feedback_for(sub.id)}.get(
            paper_id
        )
        if current == vote:  # a later, different vote is not this link's to undo
            web.store.subscribers.remove_feedback(sub.id, paper_id)
        return self._feedback_page(request, sub, paper_id, vote, "undone")

    # ------------------------------------------------------------ preview

    def _render_digest(self, sub: Subscriber) -> tuple[str, str]:
        """(html, "") for the digest due now, as `send` would send it, or ("", why none).

        When no paper arrived in the digest's window, it shows the newest day with papers
        instead, and says so: an empty day is no reason to change one's interests.
        """
        ctx = self.web.pipeline
        day = pipeline.digest_date(self.cfg, ctx.clock())
        shown = pipeline.preview_day(ctx, day)
        if shown is None:
            return "", "No papers have been fetched yet. Papers are fetched each morning."
        previews = pipeline.preview_digests(ctx, shown, [sub])
        if not previews or not (previews[0].digest.picks or previews[0].digest.trending):
            reason = previews[0].digest.empty_reason if previews else ""
            return "", (reason or "No new papers match your interests today.") + (
                " Papers are fetched each morning; try again later, or widen your interests."
            )
        if shown == day:
            return previews[0].html, ""
        note = (
            f"No new papers have arrived since {escape(long_date(shown))}: this is the digest "
            "you would have had that day, the newest day with papers."
        )
        return _with_note(previews[0].html, note), ""

    def preview(self, request: Request) -> Response:
        web = self.web
        data = web.token(request, "preview")
        sub = web.subscriber(data)
        if "d" in data.extra:
            return self._sent_preview(request, sub, str(data.extra["d"]))
        html, reason = self._render_digest(sub)
        if not html:
            return web.message(
                request,
                "No digest today",
                reason,
                links=[(links.manage_url(self.cfg, sub), "Manage your preferences")],
            )
        return _digest_response(html)

    def _sent_preview(self, request: Request, sub: Subscriber, day_text: str) -> Response:
        """The digest of one date as it was sent, with a note when a newer one went out."""
        try:
            day = date.fromisoformat(day_text)
        except ValueError:
            return self.web.message(request, "Link not valid", "This link has no valid date.", 400)
        sent = pipeline.sent_digest(self.web.pipeline, sub, day)
        if sent is None:
            return self.web.message(
                request,
                "No digest on that date",
                f"No digest was sent to you for {long_date(day)}.",
                links=[
                    (links.preview_url(self.cfg, sub), "Preview today's digest"),
                    (links.manage_url(self.cfg, sub), "Manage your preferences"),
                ],
            )
        latest = self.web.store.sends.recently_sent(sub.id, limit=1)
        newer = latest[0].digest_date if latest and latest[0].digest_date > day else None
        return _digest_response(_with_note(sent.html, self._sent_note(sub, day, newer)))

    def _sent_note(self, sub: Subscriber, day: date, newer: date | None) -> str:
        note = f"Your digest of {escape(long_date(day))}, as it was sent."
        if newer is not None:
            url = escape(links.preview_url(self.cfg, sub, newer), quote=True)
            note += f' A newer digest exists: <a href="{url}">{escape(long_date(newer))}</a>.'
        return note


def _digest_response(html: str) -> HTMLResponse:
    response = HTMLResponse(html, headers={"cache-control": "no-store"})
    response.headers["content-security-policy"] = PREVIEW_CSP
    return response


_BODY_OPEN = re.compile(r"<body[^>]*>", re.IGNORECASE)


def _with_note(html: str, note: str) -> str:
    """`html` with a one-line note (already HTML) at the top of its body."""
    banner = (
        '<p role="note" class="sent-note" style="margin:0;padding:8px 12px;font:14px/1.4 '
        'sans-serif;background:#fff8e1;color:#222;border-bottom:1px solid #e0d7b0">'
        f"{note}</p>"
    )
    found = _BODY_OPEN.search(html)
    at = found.end() if found else 0
    return html[:at] + banner + html[at:]
