"""`make bench` section "fetch": a one-day arXiv feed of 2,000 new items through a real local
HTTP server into a fresh SQLite file, against a same-process baseline (download + XML parse).

The feed is generated from the item structure of a real rss.arxiv.org feed
(tests/fixtures/arxiv_rss/rss_quant-ph_2025-04-28.xml).
"""

from __future__ import annotations

import re
import statistics
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

TEMPLATE = (
    Path(__file__).resolve().parents[2] / "tests/fixtures/arxiv_rss/rss_quant-ph_2025-04-28.xml"
)
_ITEM = re.compile(r"<item>.*?</item>", re.DOTALL)


def synthetic_feed(template: bytes, new: int = 2000, cross: int = 50, replace: int = 50) -> bytes:
    """A one-day feed with `new` + `cross` + `replace` items shaped like the template's first."""
    text = template.decode("utf-8")
    items = _ITEM.findall(text)
    head, tail = text[: text.index(items[0])], text[text.rindex(items[-1]) + len(items[-1]) :]
    model = items[0]
    old_id = re.search(r"arXiv:(\S+?)v\d", model).group(1)  # type: ignore[union-attr]
    cats = ["cs.LG", "cs.CL", "cs.CV"]
    out = [head]
    kinds = ["new"] * new + ["cross"] * cross + ["replace"] * replace
    for i, kind in enumerate(kinds):
        new_id = f"2504.{20000 + i:05d}"
        item = model.replace(old_id, new_id)
        item = item.replace("Announce Type: new", f"Announce Type: {kind}")
        item = item.replace("<arxiv:announce_type>new<", f"<arxiv:announce_type>{kind}<")
        item = re.sub(
            r"<title>.*?</title>",
            f"<title>Synthetic paper {i}: efficient attention &amp; KV caches</title>",
            item,
        )
        item = item.replace(
            "<category>quant-ph</category>",
            "".join(f"<category>{c}</category>" for c in (cats[i % 3], cats[(i + 1) % 3])),
        )
        item = re.sub(
            r"<dc:creator>.*?</dc:creator>",
            f"<dc:creator>Ann Lee{i} (MIT, Cambridge), Bo Chen and Cy Diaz</dc:creator>",
            item,
        )
        out.append(item + "\n    ")
    out.append(tail)
    return "".join(out).encode("utf-8")


@contextmanager
def serve(routes: dict[str, bytes]) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 serving `routes` (path prefix -> body); yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = next((b for p, b in routes.items() if self.path.startswith(p)), None)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/xml; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def run() -> None:
    from newsletter.config import parse_config
    from newsletter.sources.fetch import Fetcher
    from newsletter.store import Database

    feed = synthetic_feed(TEMPLATE.read_bytes())
    routes = {"/rss/": feed, "/api/daily_papers": b"[]"}
    baseline, first_s, second_s = [], [], []
    with serve(routes) as base:
        for _ in range(3):
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                content = httpx.get(f"{base}/rss/cs.LG+cs.CL+cs.CV").content
                ET.fromstring(content)
                baseline.append(time.perf_counter() - t0)
                cfg = parse_config(
                    f'[sources]\narxiv_rss_url = "{base}/rss"\nhuggingface = false\n',
                    base_dir=tmp,
                )
                with Database(Path(tmp) / "bench.db") as store:
                    now = datetime.now(UTC)
                    t0 = time.perf_counter()
                    first = Fetcher(store, cfg, now).today()
                    first_s.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    second = Fetcher(store, cfg, now).today()
                    second_s.append(time.perf_counter() - t0)
    base_ms = statistics.median(baseline) * 1000
    first_ms = statistics.median(first_s) * 1000
    second_ms = statistics.median(second_s) * 1000
    print(
        f"feed: {len(feed) / 1e6:.1f} MB, 2,100 items (2,000 new · 50 cross · 50 replace); "
        "median of 3"
    )
    print(f"baseline download + XML parse:   {base_ms:7.0f} ms")
    print(
        f"first fetch (parse + store):     {first_ms:7.0f} ms  ({first_ms / base_ms:.1f}x "
        f"baseline)  {first.line()}"
    )
    print(
        f"repeat fetch (nothing changes):  {second_ms:7.0f} ms  ({second_ms / base_ms:.1f}x "
        f"baseline)  {second.line()}"
    )
