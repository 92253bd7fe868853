"""The web app: subscribe with double opt-in, confirm, one-click unsubscribe, manage, feedback.

`create_app(cfg)` returns a Starlette app; `newsletter serve` runs it with uvicorn. Routes:

    GET  /subscribe                 subscribe form          POST /subscribe (or /)   subscribe
    (the public site's pages, `/` included, are listed in `site.py`; feeds in `feeds.py`)
    GET  /confirm/<token>           a page with one button;  POST: activate the subscription
    GET  /unsubscribe/<token>       a page with one button (never unsubscribes: scanners prefetch)
    POST /unsubscribe/<token>       unsubscribe now (also RFC 8058 one-click; no cookie or CSRF)
    GET|POST /resubscribe/<token>   ask to come back (the unsubscribe token): a confirmation e-mail
    GET|POST /manage/<token>        preferences; POST /manage/<token>/pause | /resume
    GET  /feedback/<token>          a page with one button;  POST: record the 👍/👎 vote
    POST /feedback/<token>/undo     take the vote back
    GET  /preview/<token>           today's digest in the browser

A GET never acts: mail link scanners fetch every link in a message. The confirm and vote pages
load `act.js`, which submits their form for a person at once (see that file for when it does
not); their POST needs no CSRF cookie, because the signed token in the path is the credential.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from newsletter import links
from newsletter.config import Config
from newsletter.errors import InvalidAddressError, NewsletterError
from newsletter.models import Subscriber, SubscriberStatus
from newsletter.preferences import Preferences, normalize_address, timezone_choices
from newsletter.store import is_busy
from newsletter.store.errors import UNAVAILABLE_ERRORS
from newsletter.subscriptions import Confirmation
from newsletter.tokens import TokenData, TokenError
from newsletter.web.core import CsrfError, WebContext
from newsletter.web.feeds import feed_routes
from newsletter.web.forms import parse_preferences
from newsletter.web.manage import manage_routes
from newsletter.web.outbox import outbox_routes
from newsletter.web.security import SecurityHeadersMiddleware, security_headers
from newsletter.web.site import site_routes

log = logging.getLogger("newsletter.web")
ROBOTS = "User-agent: *\nDisallow: /confirm/\nDisallow: /unsubscribe/\nDisallow: /resubscribe/\n"
ROBOTS += "Disallow: /manage/\nDisallow: /feedback/\nDisallow: /preview/\n"
ROBOTS += "Disallow: /feeds/picks/\n"
JS = "text/javascript; charset=utf-8"
STATIC_TYPES = {"style.css": "text/css; charset=utf-8", "tz.js": JS, "act.js": JS, "site.js": JS}


def create_app(
    cfg: Config,
    *,
    store_path: Path | str | None = None,
    mailer: Any = None,
    now: Callable[[], datetime] | None = None,
) -> Starlette:
    """Build the web app. `mailer` (default: from the config), `now` (a clock) for tests."""
    web = WebContext(cfg, store_path=store_path, mailer=mailer, now=now)
    pages = JoinAndLeavePages(web)
    routes = [
        Route("/", web.with_form(pages.subscribe), methods=["POST"]),  # the form's first address
        Route("/subscribe", web.with_form(pages.subscribe), methods=["POST"]),
        Route("/subscribe", pages.home, methods=["GET", "HEAD"]),
        Route("/confirm/{token}", pages.confirm_page, methods=["GET", "HEAD"]),
        Route("/confirm/{token}", pages.confirm, methods=["POST"]),
        Route("/unsubscribe/{token}", pages.unsubscribe_page, methods=["GET", "HEAD"]),
        Route("/unsubscribe/{token}", pages.unsubscribe, methods=["POST"]),
        Route("/resubscribe/{token}", pages.resubscribe_page, methods=["GET", "HEAD"]),
        Route("/resubscribe/{token}", web.with_form(pages.resubscribe), methods=["POST"]),
        *manage_routes(web),
        *site_routes(web),
        *feed_routes(web),
        *outbox_routes(web),
        Route("/static/{name}", pages.static, methods=["GET", "HEAD"]),
        Route("/robots.txt", lambda _: PlainTextResponse(ROBOTS), methods=["GET", "HEAD"]),
        Route("/healthz", _healthz, methods=["GET", "HEAD"]),
    ]
    errors = ErrorPages(web)
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeadersMiddleware, https=web.https)],
        exception_handlers={
            TokenError: errors.token_error,
            CsrfError: errors.csrf_error,
            **dict.fromkeys(UNAVAILABLE_ERRORS, errors.database_error),
            HTTPException: errors.http_error,
            Exception: errors.server_error,
        },
        lifespan=_lifespan,
    )
    app.state.web = web
    return app


async def _healthz(_: Request) -> Response:
    return PlainTextResponse("ok")  # on the event loop: no thread, no database


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    yield
    app.state.web.unsubscribes.stop()
    app.state.web.stores.close_all()


class ErrorPages:
    """Every failure is a page that says what happened and what to do; never a bare 500."""

    def __init__(self, web: WebContext) -> None:
        self.web = web

    async def token_error(self, request: Request, exc: Exception) -> Response:
        expired = isinstance(exc, TokenError) and exc.expired
        title = "This link has expired" if expired else "This link does not work"
        text = str(exc) + (
            " Links in older e-mails stop working after a while; the newest e-mail has fresh ones."
            if expired
            else " Copy the whole link from the e-mail, or use the link in a newer e-mail."
        )
        return self.web.message(
            request, title, text, 410 if expired else 400, links=[("/", "Sign up")]
        )

    async def csrf_error(self, request: Request, exc: Exception) -> Response:
        return self.web.message(request, "Please send the form again", str(exc), 403)

    async def http_error(self, request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        titles = {404: "Page not found", 405: "Not allowed here", 400: "Bad request"}
        texts = {
            404: "There is no page at this address.",
            405: "This address does not accept that kind of request.",
        }
        detail = exc.detail if isinstance(exc, HTTPException) else ""
        text = texts.get(status) or str(detail or "The request could not be handled.")
        response = self.web.message(
            request, titles.get(status, "Something went wrong"), text, status
        )
        if status == 405 and isinstance(exc, HTTPException) and exc.headers:
            response.headers.update(exc.headers)
        return response

    async def database_error(self, request: Request, exc: Exception) -> Response:
        """Another process held the database longer than a page may wait: say so, no 500."""
        if not is_busy(exc):
            return await self.server_error(request, exc)
        log.warning("database busy on %s %s: %s", request.method, request.url.path, exc)
        response = self.web.message(
            request,
            "Busy just now",
            "The site is busy and nothing was changed. Please try again in a few seconds.",
            503,
        )
        response.headers["retry-after"] = "5"
        return response

    async def server_error(self, request: Request, exc: Exception) -> Response:
        log.exception("error on %s %s", request.method, request.url.path, exc_info=exc)
        response = self.web.message(
            request,
            "Something went wrong",
            "The server hit an error and nothing was changed. Please try again in a minute.",
            500,
        )
        # This handler runs outside the middleware stack, so add the headers here.
        for key, value in security_headers(self.web.https):
            response.headers[key.decode()] = value.decode()
        return response


class JoinAndLeavePages:
    """Subscribe, confirm, unsubscribe and resubscribe."""

    def __init__(self, web: WebContext) -> None:
        self.web = web
        self.cfg = web.cfg

    def _form_page(
        self,
        request: Request,
        prefs: Preferences,
        email: str = "",
        errors: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        return self.web.render(
            request,
            "subscribe.html",
            status,
            prefs=prefs,
            email=email,
            errors=errors or {},
            categories=self.cfg.sources.arxiv_categories,
            timezones=timezone_choices(),
        )

    async def home(self, request: Request) -> Response:
        """The subscribe form; a site page's link prefills it (keywords, categories, likes)."""
        d = self.cfg.digest
        prefs = Preferences(timezone=d.timezone, hour=d.hour, size=d.size)
        prefs.keywords = [k for k in (request.query_params.get("keywords", "")[:300],) if k.strip()]
        offered = self.cfg.sources.arxiv_categories
        prefs.categories = [c for c in request.query_params.getlist("categories") if c in offered]
        prefs.likes = [x for x in request.query_params.getlist("likes")[:5] if len(x) < 40]
        return self._form_page(request, prefs)

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC_TYPES:
            raise HTTPException(404)
        body = self.web.static_file(name)
        headers = {"cache-control": "public, max-age=3600"}
        return Response(body, media_type=STATIC_TYPES[name], headers=headers)

    def _too_many(self, request: Request, wait: int) -> Response:
        minutes = max(1, round(wait / 60))
        after = f"{minutes} minute(s)" if minutes < 90 else f"{round(minutes / 60)} hour(s)"
        response = self.web.message(
            request,
            "Too many sign-up attempts",
            f"Please wait about {after} before trying again.",
            429,
        )
        response.headers["retry-after"] = str(wait)
        return response

    def subscribe(self, request: Request, form: FormData) -> Response:
        web = self.web
        web.check_csrf(request, form, "subscribe")
        wait = web.signup_wait(request)
        if wait:
            return self._too_many(request, wait)
        prefs, errors = parse_preferences(form, self.cfg.sources.arxiv_categories)
        raw_email = form.get("email", "")
        raw_email = raw_email if isinstance(raw_email, str) else ""
        address = ""
        try:
            address = normalize_address(raw_email)
        except InvalidAddressError as exc:
            errors["email"] = str(exc)[:1].upper() + str(exc)[1:].rstrip(".") + "."
        if errors:
            return self._form_page(request, prefs, raw_email[:254], errors, 400)
        signup = web.subscriptions.register(address, prefs)
        # The page shows what was typed, never the stored spelling: that would tell anyone
        # whether the address is already known.
        typed = raw_email.strip()[:254]
        return self._confirm_by_mail(request, signup.subscriber, signup.request, typed)

    def _confirm_by_mail(
        self, request: Request, subscriber: Subscriber, request_id: int | None, shown: str
    ) -> Response:
        """Send the opt-in e-mail naming the sign-up request: "check your inbox" (saying
        `shown`), a 429 page when the address, its domain or the site has had its share of
        confirmation e-mails, or a 503 when it cannot go out."""
        wait = self.web.confirmation_wait(subscriber.email)
        if wait:
            return self._too_many(request, wait)
        try:
            self.web.subscriptions.send_confirmation(subscriber, request_id)
        except (NewsletterError, OSError) as exc:
            log.warning("confirmation e-mail to subscriber %s failed: %s", subscriber.id, exc)
            return self.web.message(
                request,
                "We could not send the e-mail",
                "Your sign-up is saved, but the confirmation e-mail could not be sent just now. "
                "Please try again in a few minutes.",
                503,
            )
        return self.web.render(request, "check_inbox.html", email=shown)

    def confirm_page(self, request: Request) -> Response:
        """Ask, changing nothing: `act.js` sends the form at once for a person in a browser."""
        web = self.web
        data = web.token(request, "confirm", max_age=web.pending_max_age)
        sub = web.subscriber(data)
        people = web.subscriptions
        if people.expired(sub):
            raise TokenError(
                "This sign-up was not confirmed in time and is being removed. You can sign up "
                "again.",
                expired=True,
            )
        outcome = people.confirmation(sub, _request_id(data))
        if outcome == Confirmation.STALE:
            return self._stale_confirmation(request)
        if outcome == Confirmation.ALREADY:
            return self._confirmed(request, sub, already=True)
        return web.render(request, "confirm.html", subscriber=sub, token=_raw_token(request))

    def confirm(self, request: Request) -> Response:
        web = self.web
        data = web.token(request, "confirm", max_age=web.pending_max_age)
        people = web.subscriptions
        people.expire_pending()
        sub = web.subscriber(data)
        outcome = people.confirm(sub, _request_id(data))
        if outcome == Confirmation.STALE:
            return self._stale_confirmation(request)
        current = web.store.subscribers.get(sub.id) or sub
        returning = sub.confirmed_at is not None and outcome == Confirmation.CONFIRMS
        return self._confirmed(request, current, outcome == Confirmation.ALREADY, returning)

    def _confirmed(
        self, request: Request, sub: Subscriber, already: bool, returning: bool = False
    ) -> Response:
        return self.web.render(
            request,
            "confirmed.html",
            already=already,
            returning=returning,
            paused=sub.status == SubscriberStatus.PAUSED,
            subscriber=sub,
            local_time=_local_delivery(sub),
            manage_url=links.manage_url(self.cfg, sub),
            preview_url=links.preview_url(self.cfg, sub),
        )

    def _stale_confirmation(self, request: Request) -> Response:
        return self.web.message(
            request,
            "This link no longer subscribes you",
            "It comes from an older confirmation e-mail: one sent before you unsubscribed, or "
            "one that newer sign-ups for this address have replaced. To come back, use "
            "“Subscribe again” in the e-mail that confirmed your unsubscribe, or sign up again.",
            410,
            links=[("/", "Sign up")],
        )

    def unsubscribe_page(self, request: Request) -> Response:
        data = self.web.token(request, "unsubscribe")
        sub = self.web.find_subscriber(data)
        done = sub is None or sub.status == SubscriberStatus.UNSUBSCRIBED
        return self.web.render(
            request, "unsubscribe.html", subscriber=sub, done=done, token=_raw_token(request)
        )

    def unsubscribe(self, request: Request) -> Response:
        """Unsubscribe at once: the RFC 8058 one-click POST lands here too (body ignored).

        Always answered within seconds: when the database is locked the unsubscribe is queued
        on disk and lands when the lock is free (`WebContext.unsubscribe`)."""
        web = self.web
        data = web.token(request, "unsubscribe")
        sub = web.find_subscriber(data)
        task = None
        if sub is not None and web.unsubscribe(sub):
            # `web.subscriptions` when the task runs, on whichever thread runs it: bound here,
            # it would use this handler thread's store connection from another thread
            task = BackgroundTask(lambda: web.subscriptions.notify_unsubscribed(sub))
        response = web.render(
            request, "unsubscribed.html", subscriber=sub, token=_raw_token(request)
        )
        response.background = task
        return response

    def resubscribe_page(self, request: Request) -> Response:
        data = self.web.token(request, "unsubscribe")
        sub = self.web.subscriber(data)
        return self.web.render(
            request, "resubscribe.html", subscriber=sub, token=_raw_token(request)
        )

    def resubscribe(self, request: Request, form: FormData) -> Response:
        """Mail a confirmation link to the address: only its owner's click brings them back."""
        web = self.web
        data = web.token(request, "unsubscribe")
        sub = web.subscriber(data)
        web.check_csrf(request, form, f"resubscribe:{sub.id}")
        request_id = web.subscriptions.resubscribe(sub)
        if request_id is None:  # subscribed already: the page says so
            return self.resubscribe_page(request)
        return self._confirm_by_mail(request, sub, request_id, sub.email)


def _raw_token(request: Request) -> str:
    return str(request.path_params["token"])


def _request_id(data: TokenData) -> int | None:
    """The sign-up request a confirmation link names (links mailed before there were none)."""
    value = data.extra.get("r")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _local_delivery(sub: Subscriber) -> str:
    return f"{sub.delivery_hour:02d}:00 ({sub.timezone})"
