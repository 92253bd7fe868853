"""The public site in headless Chromium against a real `newsletter serve` process: browse a
day, go back a day, open a paper, search a phrase, follow "Get these in your inbox" to the
prefilled form, subscribe, and receive the confirmation e-mail at a real aiosmtpd.

Screenshots at 1280 and 375 px (and one in dark mode) are written to build/screenshots/site/.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from newsletter.models import InterestKind, SubscriberStatus
from newsletter.store import Database
from tests.conftest import SECRET, SMTPSink, free_port
from tests.site_support import fill
from tests.web_support import link_in, running_serve

SHOTS = Path(__file__).resolve().parents[1] / "build" / "screenshots" / "site"
WIDTHS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 375, "height": 740}}


@pytest.fixture
def served(tmp_path: Path, smtp_server: SMTPSink) -> Iterator[tuple[str, Database]]:
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(
        f'[storage]\ndatabase = "data/newsletter.db"\n'
        f'[site]\nbase_url = "http://127.0.0.1:{port}"\nname = "Daily Papers Test"\n'
        '[sources]\narxiv_categories = ["cs.LG", "cs.CL", "cs.CV"]\n'
        f'[delivery]\nmethod = "smtp"\n[smtp]\nhost = "{smtp_server.host}"\n'
        f'port = {smtp_server.port}\nsecurity = "none"\ntimeout_seconds = 10\n',
        encoding="utf-8",
    )
    db = Database(tmp_path / "data" / "newsletter.db")
    fill(db)
    env = {**os.environ, "NEWSLETTER_SECRET_KEY": SECRET}
    try:
        with running_serve(config, port, env) as base:
            yield base, db
    finally:
        db.close()


def _shots(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for label, size in WIDTHS.items():
        page.set_viewport_size(size)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= size["width"], f"{name} overflows at {size['width']} px: {width}"
        page.screenshot(path=str(SHOTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(WIDTHS["desktop"])


def test_browse_search_and_subscribe_from_a_search(
    browser: Any, served: tuple[str, Database], smtp_server: SMTPSink
) -> None:
    base, db = served
    context = browser.new_context(viewport=WIDTHS["desktop"])
    page = context.new_page()
    errors: list[str] = []  # CSP violations and script errors show up here
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    page.goto(base + "/")
    assert "Friday 27 November 2026" in page.inner_text("h1")
    assert "Get trending papers in your email inbox once a day!" in page.inner_text(
        ".subscribe-banner"
    )
    assert page.locator("article.paper").count() == 20
    first = page.locator("article.paper").first
    assert "▲" in first.inner_text() and first.locator("a", has_text="Hugging Face").count() == 1
    height = page.evaluate("document.querySelector('article.paper').offsetTop")
    first.locator("summary").click()  # the excerpt opens into the full abstract
    assert first.locator("details[open]").count() == 1
    assert page.evaluate("document.querySelector('article.paper').offsetTop") == height
    _shots(page, "day")

    page.click("a.day-prev")
    page.wait_for_url(base + "/papers/2026-11-26")
    assert "Thursday 26 November 2026" in page.inner_text("h1")

    title = page.locator("article.paper h2 a").first
    wanted = title.inner_text()
    title.click()
    assert page.inner_text("h1") == wanted
    assert page.locator("pre.bibtex").inner_text().startswith("@misc{")
    assert page.locator("button.copy").is_visible()  # site.js ran under the CSP
    _shots(page, "paper")

    page.fill("#site-q", '"cost aggregation"')
    page.press("#site-q", "Enter")
    page.wait_for_url("**/search?q=*")
    assert page.locator("article.paper").count() >= 2
    assert page.locator("article.paper mark").first.inner_text().lower() in ("cost", "aggregation")
    _shots(page, "search")
    dark = browser.new_context(viewport=WIDTHS["phone"], color_scheme="dark")
    dark_page = dark.new_page()
    dark_page.goto(page.url)
    dark_page.screenshot(path=str(SHOTS / "search-phone-dark.png"), full_page=True)
    dark.close()

    page.click("text=Get these in your inbox")
    page.wait_for_url("**/subscribe?keywords=*")
    assert page.input_value("#keywords") == "cost aggregation"
    _shots(page, "subscribe")
    page.fill("#email", "reader@example.org")
    page.click("button[type=submit]")
    assert page.inner_text("h1") == "Check your inbox"

    deadline = time.monotonic() + 10
    while not smtp_server.messages() and time.monotonic() < deadline:
        time.sleep(0.05)
    mails = smtp_server.messages()
    assert len(mails) == 1 and mails[0]["To"].addresses[0].addr_spec == "reader@example.org"
    assert "/confirm/" in link_in(mails[0], "/confirm/")
    sub = db.subscribers.get_by_email("reader@example.org")
    assert sub is not None and sub.status == SubscriberStatus.PENDING
    kinds = {(i.kind, i.value) for i in db.subscribers.interests_for(sub.id)}
    assert (InterestKind.KEYWORD, "cost aggregation") in kinds
    assert errors == []
    context.close()
