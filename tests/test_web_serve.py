"""`newsletter serve` as a real process on a local port: the issue's "what it must show"."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from newsletter import links
from newsletter.bench.serve import ChunkedFlood, health_while, write_lock_held
from newsletter.config import Config, parse_config
from newsletter.delivery import build_message, message_id_for
from newsletter.models import SubscriberStatus
from newsletter.render.renderer import RenderedEmail
from newsletter.store import Database
from tests.conftest import SECRET, free_port
from tests.web_support import csrf_tokens, link_in, outbox, path_of, running_serve, tamper


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Config]]:
    port = free_port()
    config_file = tmp_path / "config.toml"
    config_file.write_text(
        f'[site]\nbase_url = "http://127.0.0.1:{port}"\nname = "Served Digest"\n'
        '[delivery]\nmethod = "maildir:outbox"\n',
        encoding="utf-8",
    )
    env = {**os.environ, "NEWSLETTER_SECRET_KEY": SECRET}
    cfg = parse_config(config_file.read_text(), base_dir=tmp_path, env=env)
    with running_serve(config_file, port, env) as base:
        yield base, cfg


def test_newsletter_serve_subscribe_confirm_one_click_and_tampered_token(
    served: tuple[str, Config],
) -> None:
    base, cfg = served
    with httpx.Client(base_url=base) as browser:
        home = browser.get("/subscribe")
        assert home.status_code == 200 and '<form method="post" action="/"' in home.text
        r = browser.post(
            "/",
            data={
                "csrf_token": csrf_tokens(home.text)[0],
                "email": "served@example.org",
                "keywords": "reinforcement learning",
                "timezone": "UTC",
                "hour": "7",
                "size": "10",
            },
        )
        assert r.status_code == 200 and "Check your inbox" in r.text

    mails = outbox(cfg.path("outbox"))
    assert len(mails) == 1
    with Database(cfg.database_path) as db:
        sub = db.subscribers.get_by_email("served@example.org")
        assert sub is not None and sub.status == SubscriberStatus.PENDING
        confirm = link_in(mails[0], "/confirm/")
        assert confirm.startswith(base + "/confirm/")
        assert httpx.get(confirm).status_code == 200  # a scanner's fetch: the page only asks
        assert db.subscribers.get(sub.id).status == SubscriberStatus.PENDING  # type: ignore[union-attr]
        assert httpx.post(confirm).status_code == 200
        sub = db.subscribers.get(sub.id)
        assert sub is not None and sub.status == SubscriberStatus.ACTIVE

        digest = build_message(
            cfg,
            sub,
            RenderedEmail("Papers for today", "<p>papers</p>", "papers", "pre"),
            message_id=message_id_for(cfg, sub.id, datetime.now(UTC).date()),
            kind="digest",
        )
        assert digest["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        https_url = str(digest["List-Unsubscribe"]).split(",")[0].strip().strip("<>")
        one_click = httpx.post(https_url, data={"List-Unsubscribe": "One-Click"})
        assert one_click.status_code == 200
        assert db.subscribers.get(sub.id).status == SubscriberStatus.UNSUBSCRIBED  # type: ignore[union-attr]

        bad = httpx.get(base + tamper(path_of(confirm)))
        assert 400 <= bad.status_code < 500 and "This link does not work" in bad.text


def test_one_click_unsubscribe_while_another_process_holds_the_write_lock(
    served: tuple[str, Config],
) -> None:
    """The one-click is answered (queued) while the lock is still held, /healthz keeps answering
    meanwhile, and the unsubscribe lands once the lock is released. How long each takes is a
    bench figure (`python -m newsletter.bench serve`), not a test."""
    base, cfg = served
    with Database(cfg.database_path) as db:
        sub, _ = db.subscribers.add(
            "locked@example.org", datetime.now(UTC), status=SubscriberStatus.ACTIVE
        )
    with write_lock_held(cfg.database_path, 8) as holder:
        answer: dict[str, int | bool] = {}

        def one_click() -> None:
            url, form = links.unsubscribe_url(cfg, sub), {"List-Unsubscribe": "One-Click"}
            answer["status"] = httpx.post(url, data=form, timeout=30).status_code
            answer["lock still held"] = holder.poll() is None

        poster = threading.Thread(target=one_click)
        poster.start()
        with httpx.Client(timeout=30) as client:
            health = health_while(client, base + "/healthz", poster)
        poster.join()
        assert answer["lock still held"], "the one-click waited for the lock to be released"
        assert 200 <= int(answer["status"]) < 300, answer
        with Database(cfg.database_path) as db:
            assert db.subscribers.get(sub.id).status == SubscriberStatus.ACTIVE  # type: ignore[union-attr]
        holder.wait(timeout=30)
    deadline = time.monotonic() + 20
    with Database(cfg.database_path) as db:
        while db.subscribers.get(sub.id).status != SubscriberStatus.UNSUBSCRIBED:  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the queued unsubscribe never landed"
            time.sleep(0.1)
    assert len(health) >= 10


@pytest.mark.parametrize(
    ("path", "answer"),
    [
        ("/", b"HTTP/1.1 413"),  # the form is read: cut off at 64 KB
        ("/unsubscribe/not-a-token", b"HTTP/1.1 400"),  # never read: the connection is closed
    ],
)
def test_serve_stays_responsive_while_a_100_mb_chunked_post_is_refused(
    served: tuple[str, Config], path: str, answer: bytes
) -> None:
    """The flood is cut off with `answer` long before 100 MB, and /healthz answers "ok" on a
    kept-alive connection throughout (its latency meanwhile: `python -m newsletter.bench serve`)."""
    base, _ = served
    flood = ChunkedFlood(int(base.rsplit(":", 1)[1]), path)
    sender = threading.Thread(target=flood.run)
    with httpx.Client(timeout=5) as client:
        client.get(base + "/healthz")
        sender.start()
        health = health_while(client, base + "/healthz", sender)
    sender.join(timeout=30)
    assert flood.reply.startswith(answer), flood.reply[:200]
    assert flood.sent < flood.total, "the whole 100 MB was read"
    assert len(health) >= 10
