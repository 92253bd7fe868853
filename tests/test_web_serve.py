"""`newsletter serve` as a real process on a local port: the issue's "what it must show"."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from newsletter.config import Config, parse_config
from newsletter.delivery import build_message, message_id_for
from newsletter.models import SubscriberStatus
from newsletter.render.renderer import RenderedEmail
from newsletter.store import Database
from tests.conftest import SECRET, free_port
from tests.web_support import csrf_tokens, link_in, outbox, path_of, tamper


def _command() -> list[str]:
    script = Path(sys.executable).parent / "newsletter"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from newsletter.cli import main; main()"]


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
    proc = subprocess.Popen(
        [*_command(), "--config", str(config_file), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    else:
        proc.kill()
        out = proc.stdout.read().decode() if proc.stdout else ""
        pytest.fail(f"newsletter serve did not start:\n{out}")
    cfg = parse_config(config_file.read_text(), base_dir=tmp_path, env=env)
    try:
        yield base, cfg
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


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
