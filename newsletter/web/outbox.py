"""The outbox page: what the site sent, read back from its Maildir (`delivery.method =
"maildir:PATH"`, as on the demo), so sign-up can be tried end to end in a browser.

Only when delivery goes to a Maildir, and only for a browser on this machine: the messages
hold working confirm and manage links for every address.
"""

from __future__ import annotations

import mailbox
import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from newsletter.web.core import WebContext

LOCAL_CLIENTS = frozenset({"127.0.0.1", "::1"})
# the names a browser on this machine reaches the site by; any other Host is a page elsewhere
# whose domain was pointed at 127.0.0.1 (DNS rebinding), reading the sign-in links through the
# operator's browser, or a proxy on this machine forwarding another machine's request
LOCAL_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
_HOST = re.compile(r"(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?")


def host_name(header: str) -> str:
    """The name in a Host header, lower-case and without brackets or port; "" when the header
    is missing or malformed (the URL Starlette rebuilds falls back to the socket's own address
    then, which would pass for 127.0.0.1)."""
    m = _HOST.fullmatch(header.strip())
    return m.group(1).strip("[]").lower() if m else ""


SHOWN = 50
_URL = re.compile(r"https?://[^\s<>\"')\]]+")


def outbox_routes(web: WebContext) -> list[Route]:
    page = OutboxPage(web)
    return [Route("/outbox", page.outbox, methods=["GET", "HEAD"])]


def _text_of(msg: EmailMessage) -> str:
    body = msg.get_body(("plain",))
    return body.get_content() if isinstance(body, EmailMessage) else ""


class OutboxPage:
    def __init__(self, web: WebContext) -> None:
        self.web = web
        method = web.cfg.delivery.method
        maildir = method.removeprefix("maildir:") if method.startswith("maildir:") else ""
        self.path = web.cfg.path(maildir) if maildir else None

    def _messages(self) -> list[dict[str, Any]]:
        """The newest messages first, each with the site links its text holds."""
        assert self.path is not None
        if not self.path.exists():
            return []
        box = mailbox.Maildir(self.path, factory=None, create=False)
        base = self.web.cfg.site.base_url.rstrip("/")
        found: list[dict[str, Any]] = []
        for key in box.iterkeys():
            with box.get_file(key) as handle:
                raw = handle.read()
            msg = message_from_bytes(raw, policy=policy.default)
            assert isinstance(msg, EmailMessage)
            try:
                when = parsedate_to_datetime(str(msg["Date"]))
            except (TypeError, ValueError):
                continue
            urls = dict.fromkeys(u for u in _URL.findall(_text_of(msg)) if u.startswith(base))
            found.append(
                {
                    "when": when,
                    "to": str(msg["To"] or ""),
                    "subject": str(msg["Subject"] or ""),
                    "links": list(urls),
                }
            )
        found.sort(key=lambda m: m["when"], reverse=True)
        return found[:SHOWN]

    def outbox(self, request: Request) -> Response:
        client = request.client.host if request.client else ""
        host = host_name(request.headers.get("host", ""))
        if self.path is None or client not in LOCAL_CLIENTS or host not in LOCAL_HOSTS:
            return PlainTextResponse("Not Found", status_code=404)
        response = self.web.render(
            request, "outbox.html", messages=self._messages(), maildir=str(self.path)
        )
        response.headers["cache-control"] = "no-store"
        return response
