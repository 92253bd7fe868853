"""After `newsletter demo`, `newsletter serve` on the demo's own config (no environment key),
driven by a real headless Chromium: sign up, read the confirmation on the outbox page, confirm,
manage, preview, unsubscribe."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lxml.html
import pytest

from newsletter.config import parse_config
from newsletter.demo import CONFIG, DEMO_DAY, READERS, received_messages, run_demo
from newsletter.models import SubscriberStatus
from newsletter.store import Database
from tests.conftest import free_port
from tests.web_support import running_serve


@pytest.fixture
def demo_site(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root, port = tmp_path / "demo", free_port()
    root.mkdir()
    base = f"http://127.0.0.1:{port}"
    (root / "config.toml").write_text(
        CONFIG.replace("http://127.0.0.1:8000", base), encoding="utf-8"
    )
    run_demo(root, echo=lambda _line: None)
    env = {k: v for k, v in os.environ.items() if k != "NEWSLETTER_SECRET_KEY"}
    with running_serve(root / "config.toml", port, env):
        yield base, root


def _status(root: Path, email: str) -> str:
    with Database(root / "data" / "newsletter.db") as db:
        sub = db.subscribers.get_by_email(email)
        assert sub is not None
        return str(sub.status)


def test_the_demo_site_end_to_end_in_chromium(browser: Any, demo_site: tuple[str, Path]) -> None:
    base, root = demo_site
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.add_init_script(
        "Object.defineProperty(Navigator.prototype, 'webdriver', {get: () => false})"
    )
    page.goto(base + "/subscribe")
    page.fill("#email", "newcomer@example.org")
    page.fill("#keywords", "diffusion models, language models")
    page.click("button[type=submit]")
    assert page.inner_text("h1") == "Check your inbox"

    page.goto(base + "/outbox")
    message = page.locator("li.outbox-message", has_text="newcomer@example.org").first
    confirm = message.locator("a[href*='/confirm/']").first.get_attribute("href")
    assert confirm and confirm.startswith(base)
    page.goto(confirm)  # one click: act.js sends the form
    page.locator("h1", has_text="You're in").wait_for(timeout=10_000)
    assert _status(root, "newcomer@example.org") == SubscriberStatus.ACTIVE

    page.click("text=Manage preferences")
    assert "diffusion models" in page.input_value("#keywords")
    page.click("text=Preview today's digest")
    assert page.locator("a[href*='arxiv.org/abs/']").count() > 0  # a digest with picks
    assert "widen" not in page.content()

    page.go_back()
    page.click("a:has-text('Unsubscribe')")
    page.click("button:has-text('Unsubscribe')")
    assert page.inner_text("h1") == "You are unsubscribed"
    assert _status(root, "newcomer@example.org") == SubscriberStatus.UNSUBSCRIBED


def test_a_sent_demo_digest_in_the_browser_shows_its_picks(
    browser: Any, demo_site: tuple[str, Path]
) -> None:
    """The dated "View in browser" link of a digest the demo sent shows that digest's picks."""
    base, root = demo_site
    path = root / "config.toml"
    cfg = parse_config(path.read_text(encoding="utf-8"), base_dir=root, env={}, source=str(path))
    with Database(cfg.database_path) as db:
        sub = db.subscribers.get_by_email(READERS[0].email)
        assert sub is not None
        sent = db.sends.get(sub.id, DEMO_DAY)
    assert sent is not None and sent.paper_ids
    received = next(
        msg
        for _raw, msg in received_messages(root / "maildir").values()
        if msg["To"].addresses[0].addr_spec == sub.email
    )
    html = received.get_body(("html",)).get_content()  # type: ignore[union-attr]
    view = next(
        a.get("href")
        for a in lxml.html.document_fromstring(html).iter("a")
        if " ".join(a.text_content().split()) == "View in browser"
    )
    assert view.startswith(f"{base}/preview/")  # the e-mail links point at the site just started
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(view)
    assert "as it was sent" in page.inner_text("body")
    shown = page.content()
    assert all(pid in shown for pid in sent.paper_ids)


@pytest.mark.parametrize("width", [375, 1280])
def test_the_demo_previews_index_fits_the_screen(browser: Any, tmp_path: Path, width: int) -> None:
    """The index `make demo` writes: nothing scrolls sideways, on a phone or a desktop."""
    result = run_demo(tmp_path / "demo", echo=lambda _line: None)
    page = browser.new_page(viewport={"width": width, "height": 800})
    page.goto((result.previews / "index.html").as_uri())
    scroll, client = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert scroll <= client, f"{scroll} px of content in a {client} px wide window"
    links_shown = page.eval_on_selector_all("a[href$='.html']", "els => els.length")
    assert links_shown == len(READERS)
    page.close()
