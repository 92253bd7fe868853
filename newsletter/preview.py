"""Look at digests before anyone gets them: write them to files, or serve them on localhost.

`write_previews` writes `<subscriber>.html`, `.txt` and the complete `.eml` (exactly the bytes
the send loop would hand to SMTP) for each `pipeline.DigestPreview` from `pipeline.iter_previews`.
`preview_server` runs a tiny stdlib HTTP server on 127.0.0.1 with an index of the digests.
Nothing here records a send.

The index shows subscribers' addresses and their live manage and unsubscribe links, so the
server answers only requests addressed to localhost (a DNS-rebinding page, whose requests carry
its own host name, gets 403) and serves everything under a random secret path: the URL it
prints is the only way in, and another local user or a browser tab cannot guess it.
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import cache
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, cast

from newsletter.models import Subscriber

if TYPE_CHECKING:
    import jinja2

    from newsletter.pipeline import DigestPreview

log = logging.getLogger(__name__)

# The digest HTML has no scripts; the CSP makes sure a preview page can never run or load any.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; base-uri 'none'"


def file_stem(subscriber: Subscriber) -> str:
    """The one name a subscriber's digest files get (`preview --out`, the demo's previews, a
    downloaded .eml): the address in lower case, each run of other characters a '-'
    ('ada.l@example.org' → 'ada-l-example-org'), safe in any file system and URL."""
    return re.sub(r"[^a-z0-9]+", "-", subscriber.email.lower()).strip("-")[:120] or "subscriber"


class FileStems:
    """`file_stem` of each subscriber in turn, made unique: a later subscriber whose address
    gives a stem already taken ('a.b@x.org', 'a-b@x.org') gets its id appended, so no preview
    overwrites another."""

    def __init__(self) -> None:
        self.taken: set[str] = set()

    def __call__(self, subscriber: Subscriber) -> str:
        stem = file_stem(subscriber)
        stem = f"{stem}-{subscriber.id}" if stem in self.taken else stem
        self.taken.add(stem)
        return stem


def write_previews(
    previews: Iterable[DigestPreview], out_dir: Path
) -> Iterator[tuple[DigestPreview, Path]]:
    """Write .html, .txt and .eml per subscriber as the previews come (`pipeline.iter_previews`
    gives them a chunk at a time); yields each preview with its .html path once written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stems = FileStems()
    for p in previews:
        stem = stems(p.subscriber)
        (out_dir / f"{stem}.html").write_text(p.html, encoding="utf-8")
        (out_dir / f"{stem}.txt").write_text(p.text, encoding="utf-8")
        (out_dir / f"{stem}.eml").write_bytes(p.eml)
        yield p, out_dir / f"{stem}.html"


INDEX_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Digest previews · {{ day }}</title>
<style>
body { font: 15px/1.5 -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto;
       max-width: 60rem; padding: 0 1rem; color: #1d2433; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .4rem .6rem; border-bottom: 1px solid #e1e4ea; }
td.subject { max-width: 28rem; }
.note { color: #6b7385; }
</style></head>
<body>
<h1>Digest previews for {{ day }}</h1>
<p class="note">{{ previews|length }} digest(s), rendered now from the database. Nothing is
sent or recorded by previewing. Reload to render again.</p>
<table>
<tr><th>Subscriber</th><th>Subject</th><th>Picks</th><th>HTML size</th><th>Open</th></tr>
{% for p in previews %}
<tr>
<td>{{ p.subscriber.email }}</td>
<td class="subject">{{ p.subject }}</td>
<td>{{ p.picks }}{% if p.dropped %} ({{ p.dropped }} dropped to fit){% endif %}</td>
<td>{{ "%.1f"|format(p.html.encode()|length / 1024) }} KB</td>
<td><a href="{{ base }}{{ loop.index0 }}.html">HTML</a>
 · <a href="{{ base }}{{ loop.index0 }}.txt">text</a>
 · <a href="{{ base }}{{ loop.index0 }}.eml">.eml</a></td>
</tr>
{% else %}
<tr><td colspan="5">No digests: no active subscribers, or no papers stored for this day
(run <code>newsletter fetch</code>).</td></tr>
{% endfor %}
</table>
</body></html>
"""


@cache
def _index() -> jinja2.Template:
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(INDEX_TEMPLATE)


def index_page(day: str, previews: Sequence[DigestPreview], base: str = "/") -> str:
    """The index; `base` is the path the digest links start with (the server's secret)."""
    return _index().render(day=day, previews=previews, base=base)


LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def local_host(header: str | None, port: int) -> bool:
    """Whether a Host header names this machine: localhost, 127.0.0.1 or [::1], on `port`
    (or with no port). A DNS-rebinding page's requests name the attacker's host instead."""
    value = (header or "").strip().lower()
    return any(value in (name, f"{name}:{port}") for name in LOCAL_HOSTS)


def _respond(
    handler: BaseHTTPRequestHandler, body: bytes, ctype: str, status: HTTPStatus, download: str
) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", f"{ctype}; charset=utf-8")
    handler.send_header("Content-Length", str(len(body)))
    handler.send_header("Content-Security-Policy", CSP)
    handler.send_header("X-Content-Type-Options", "nosniff")
    handler.send_header("Cache-Control", "no-store")
    if download:
        handler.send_header("Content-Disposition", f'attachment; filename="{download}"')
    handler.end_headers()
    handler.wfile.write(body)


def make_handler(
    day: str, build: Callable[[], Sequence[DigestPreview]], secret: str
) -> type[BaseHTTPRequestHandler]:
    """A request handler that renders the previews afresh for each index request, answering
    only localhost Host headers and paths under `/<secret>/`."""
    state: dict[str, Sequence[DigestPreview]] = {}
    base = f"/{secret}/"

    class Handler(BaseHTTPRequestHandler):
        server_version = "newsletter-preview"

        def do_GET(self) -> None:
            if not local_host(self.headers.get("Host"), cast(HTTPServer, self.server).server_port):
                self._send(b"only for localhost", "text/plain", HTTPStatus.FORBIDDEN)
                return
            full = self.path.split("?", 1)[0]
            if not hmac.compare_digest(full[: len(base)].encode(), base.encode()):
                self._send(b"not found", "text/plain", HTTPStatus.NOT_FOUND)
                return
            path = "/" + full[len(base) :]
            if path in ("/", "/index.html"):
                state["previews"] = build()
                self._send(index_page(day, state["previews"], base).encode(), "text/html")
                return
            m = re.fullmatch(r"/(\d+)\.(html|txt|eml)", path)
            previews = state.get("previews")
            if previews is None:
                previews = state["previews"] = build()
            if m is None or int(m.group(1)) >= len(previews):
                self._send(b"not found: go to the index", "text/plain", HTTPStatus.NOT_FOUND)
                return
            p, kind = previews[int(m.group(1))], m.group(2)
            if kind == "html":
                self._send(p.html.encode(), "text/html")
            elif kind == "txt":
                self._send(p.text.encode(), "text/plain")
            else:
                self._send(p.eml, "message/rfc822", download=f"{file_stem(p.subscriber)}.eml")

        def _send(
            self,
            body: bytes,
            ctype: str,
            status: HTTPStatus = HTTPStatus.OK,
            download: str = "",
        ) -> None:
            _respond(self, body, ctype, status, download)

        def log_message(self, format: str, *args: object) -> None:
            log.info("preview %s", format % args)

    return Handler


class PreviewServer(HTTPServer):
    """The preview HTTP server; `url` is its index, secret path included."""

    def __init__(
        self, address: tuple[str, int], day: str, build: Callable[[], Sequence[DigestPreview]]
    ) -> None:
        self.secret = secrets.token_urlsafe(18)
        super().__init__(address, make_handler(day, build, self.secret))

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/{self.secret}/"


def preview_server(
    day: str, build: Callable[[], Sequence[DigestPreview]], port: int, host: str = "127.0.0.1"
) -> PreviewServer:
    """An HTTP server (not yet serving) on host:port; call `serve_forever()` on it, and give
    the user its `url` (the only address it answers).

    Single-threaded on purpose: the previews are built from one SQLite connection.
    """
    return PreviewServer((host, port), day, build)
