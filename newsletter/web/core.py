"""What every web page handler shares: config, clock, per-thread stores, templates, CSRF, mail.

The route handlers live in `app.py` (join and leave) and `manage.py` (manage, feedback,
preview); both reach the rest of the program only through this object: `subscriptions` for
every status change and account mail, `pipeline` for the digest preview.

Handlers that touch the store are plain functions, which Starlette runs in its thread pool:
a SQLite call may wait for another process's write lock (up to `BUSY_TIMEOUT` here), and it
must never hold up the event loop, which answers every other request (and `/healthz`).
A handler that reads a form is wrapped by `with_form`, which reads the body on the loop first.
"""

from __future__ import annotations

import hmac
import logging
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from newsletter.config import REPO_TEMPLATES, Config
from newsletter.delivery import Mailer, mailer_from_config
from newsletter.errors import NewsletterError
from newsletter.models import Subscriber, SubscriberStatus
from newsletter.pipeline import Context
from newsletter.render.renderer import Renderer
from newsletter.store import Database, is_busy
from newsletter.store.dialect import is_postgres_url
from newsletter.store.limits import Limit
from newsletter.subscriptions import Subscriptions
from newsletter.tokens import DAY, TokenData, TokenError, read_token
from newsletter.web.security import BodyTooLarge, Csrf, client_network, mailbox_key
from newsletter.web.unsubscribes import UnsubscribeQueue

log = logging.getLogger("newsletter.web")
MAX_TOKEN_CHARS = 2048
HOUR = 3600
# Seconds a web request waits for another connection's write lock: a page that cannot get it
# says "busy, try again" at once, and an unsubscribe is queued (see `unsubscribes.py`).
BUSY_TIMEOUT = 2.0
FormHandler = Callable[[Request, FormData], Response]


class CsrfError(NewsletterError):
    """A form POST without a matching CSRF token (forged, or cookies are off)."""


def utcnow() -> datetime:
    return datetime.now(UTC)


class ThreadStores:
    """One database connection per worker thread (on SQLite, WAL lets them read and write side
    by side; on PostgreSQL, they come from the process's pool)."""

    def __init__(
        self, path: Path | str, busy_timeout: float = BUSY_TIMEOUT, password: str = ""
    ) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self.password = password
        self._local = threading.local()
        self._all: list[Database] = []
        self._lock = threading.Lock()
        self.get()  # create and migrate the database before the first request

    def get(self) -> Database:
        store = getattr(self._local, "store", None)
        if store is None:
            store = Database(self.path, busy_timeout=self.busy_timeout, password=self.password)
            self._local.store = store
            with self._lock:
                self._all.append(store)
        return store

    def close_all(self) -> None:
        with self._lock:
            stores, self._all = self._all, []
        for store in stores:
            store.close()


class WebContext:
    """The web app's shared state and helpers."""

    def __init__(
        self,
        cfg: Config,
        *,
        store_path: Path | str | None = None,
        mailer: Mailer | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.cfg = cfg
        self.secret = cfg.require_secret_key()
        self.clock = now or utcnow
        self.https = cfg.site.base_url.startswith("https://")
        target = store_path or cfg.database
        self.stores = ThreadStores(target, password=cfg.database_password)
        # Unsubscribes wait here while SQLite is locked (next to the file; on PostgreSQL, in
        # the data folder).
        path = (
            Path(target)
            if isinstance(target, Path) or not is_postgres_url(target)
            else (cfg.path(cfg.storage.data_dir) / "newsletter")
        )
        self._mailer = mailer
        self._mail_lock = threading.Lock()
        self._renderer: Renderer | None = None
        self.csrf = Csrf(self.secret, https=self.https)
        folders = [cfg.templates_dir / "web", REPO_TEMPLATES / "web"]
        self.template_dirs = [d for d in dict.fromkeys(folders) if d.is_dir()]
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([str(d) for d in self.template_dirs]),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.unsubscribes = UnsubscribeQueue(
            path.with_name(path.name + ".unsubscribe-queue"), self._land_unsubscribe
        )
        self.unsubscribes.start()  # what a previous run could not write yet

    # ------------------------------------------------------------ resources

    @property
    def store(self) -> Database:
        return self.stores.get()

    def mailer(self) -> Mailer:
        if self._mailer is None:
            self._mailer = mailer_from_config(self.cfg)
        return self._mailer

    @property
    def subscriptions(self) -> Subscriptions:
        """Status changes and account mail over this thread's store (one mail at a time)."""
        return Subscriptions(self.store, self.cfg, self.clock, self.mailer, self._mail_lock)

    @property
    def pipeline(self) -> Context:
        """The daily flow over this thread's store, for the web preview."""
        if self._renderer is None:
            self._renderer = Renderer(self.cfg)
        return Context(self.store, self.cfg, clock=self.clock, renderer=self._renderer)

    def static_file(self, name: str) -> bytes:
        for folder in self.template_dirs:
            path = folder / name
            if path.is_file():
                return path.read_bytes()
        raise HTTPException(404)

    # ------------------------------------------------------------ pages

    def render(
        self, request: Request, template: str, status: int = 200, **context: Any
    ) -> HTMLResponse:
        """Render a page; give the browser a CSRF cookie if it has none."""
        cookie = self.csrf.cookie_value(request.cookies)
        new_cookie = cookie is None
        cookie = cookie or self.csrf.new_cookie_value()
        html = self.env.get_template(template).render(
            site=self.cfg.site,
            csrf=lambda form: self.csrf.token(cookie, form),
            **context,
        )
        response = HTMLResponse(html, status_code=status)
        response.headers["cache-control"] = "no-store"
        if new_cookie:
            response.set_cookie(value=cookie, **self.csrf.cookie_kwargs())
        return response

    def message(
        self, request: Request, title: str, text: str, status: int = 200, **extra: Any
    ) -> HTMLResponse:
        """A page with a heading, a sentence and optional links."""
        return self.render(
            request, "message.html", status, title=title, text=text, links=extra.get("links", [])
        )

    @staticmethod
    def redirect(path: str) -> RedirectResponse:
        return RedirectResponse(path, status_code=303)

    # ------------------------------------------------------------ requests

    async def form(self, request: Request) -> FormData:
        try:
            return await request.form(max_files=0, max_fields=200, max_part_size=64 * 1024)
        except BodyTooLarge:
            raise  # the middleware answers 413
        except Exception as exc:  # malformed multipart/urlencoded body
            raise HTTPException(400, f"The form could not be read: {exc}") from None

    def with_form(self, handler: FormHandler) -> Callable[[Request], Awaitable[Response]]:
        """An endpoint that reads the form on the event loop (the body is size-capped), then
        runs `handler(request, form)` in a worker thread, as plain-function endpoints run."""

        async def endpoint(request: Request) -> Response:
            form = await self.form(request)
            return await run_in_threadpool(handler, request, form)

        return endpoint

    def check_csrf(self, request: Request, form: FormData, name: str) -> None:
        cookie = self.csrf.cookie_value(request.cookies)
        if not self.csrf.valid(cookie, name, form.get("csrf_token")):
            raise CsrfError(
                "This form has expired or did not come from this site. Go back, reload the page "
                "and send it again (cookies must be allowed for this site)."
            )

    def token(self, request: Request, purpose: str, max_age: int | None = None) -> TokenData:
        raw = request.path_params.get("token", "")
        if not raw or len(raw) > MAX_TOKEN_CHARS:
            raise TokenError("This link is not valid: it may have been cut or changed.")
        return read_token(self.secret, purpose, raw, max_age=max_age)

    def find_subscriber(self, data: TokenData) -> Subscriber | None:
        """The token's subscriber, or None when the row it was minted for is gone.

        The token's nonce must be the row's: ids are not reused, and even a reused one would
        not match. A token without a nonce (minted before rows had one) is accepted only for
        rows that existed then (`legacy_links`)."""
        return self.subscriptions.holder(data)

    def subscriber(self, data: TokenData) -> Subscriber:
        """The token's subscriber, or a 410 page when the subscription no longer exists."""
        sub = self.find_subscriber(data)
        if sub is None:
            raise TokenError(
                "This subscription no longer exists (unconfirmed sign-ups are removed after "
                f"{self.cfg.web.pending_expiry_days} days). You can sign up again.",
                expired=True,
            )
        return sub

    # ------------------------------------------------------------ leaving

    def unsubscribe(self, sub: Subscriber) -> bool:
        """Unsubscribe now; True when the "you are unsubscribed" notice is due. When the
        database stays locked the unsubscribe is queued instead: it lands (and sends its
        notice) as soon as the lock is free, and False is returned."""
        try:
            return self._unsubscribe_now(sub)
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
            self.unsubscribes.add(sub.id, sub.nonce)
            return False

    def _unsubscribe_now(self, sub: Subscriber) -> bool:
        was_receiving = sub.status in (SubscriberStatus.ACTIVE, SubscriberStatus.PAUSED)
        return self.subscriptions.unsubscribe(sub) and was_receiving

    def _land_unsubscribe(self, subscriber_id: int, nonce: str) -> None:
        sub = self.store.subscribers.get(subscriber_id)
        if sub is None or not hmac.compare_digest(sub.nonce, nonce):
            return  # the row is gone: there is nobody left to unsubscribe
        if self._unsubscribe_now(sub):
            self.subscriptions.notify_unsubscribed(sub)

    @property
    def pending_max_age(self) -> int:
        return self.cfg.web.pending_expiry_days * DAY

    # ------------------------------------------------------------ rate limits

    def signup_wait(self, request: Request) -> int:
        """Count a sign-up attempt from this client's network; seconds to wait when refused."""
        # Behind a reverse proxy, uvicorn's --forwarded-allow-ips puts the real client here.
        network = client_network(request.client.host if request.client else "unknown")
        limit = Limit(f"signup:{network}", self.cfg.web.subscribe_per_hour, HOUR)
        return self.store.limits.acquire([limit], self.clock().timestamp())

    def confirmation_wait(self, address: str) -> int:
        """Count a confirmation e-mail to `address` against its mailbox, its domain and the
        hourly total; seconds to wait (and nothing counted) when one of them is used up."""
        w, mailbox = self.cfg.web, mailbox_key(address)
        domain = mailbox.rpartition("@")[2]
        limits = [
            Limit(f"confirm-mailbox:{mailbox}", w.confirm_per_address_per_day, DAY),
            Limit(f"confirm-domain:{domain}", w.confirm_per_domain_per_hour, HOUR),
            Limit("confirm-all", w.confirm_per_hour, HOUR),
        ]
        return self.store.limits.acquire(limits, self.clock().timestamp())
