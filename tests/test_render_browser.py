"""The digest in a real headless Chromium: 600 px desktop, 375 px phone, dark mode."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from newsletter.render.renderer import Renderer
from tests.conftest import make_config
from tests.render_factory import corpus, make_digest, paper

LONG_WORD = "Supercalifragilistic" * 6  # an unbreakable 120-character "word"


@pytest.fixture(scope="module")
def html(tmp_path_factory: pytest.TempPathFactory) -> str:
    rows = corpus()
    papers = [paper(i, rows[i]) for i in range(6)]
    papers[1] = paper(1, {"title": f"{LONG_WORD} in a title", "abstract": LONG_WORD + " text"})
    cfg = make_config(tmp_path_factory.mktemp("render"))
    return Renderer(cfg).digest(make_digest(4, 2, papers=papers)).html


@pytest.mark.parametrize("width", [600, 375])
def test_digest_fits_the_screen_and_titles_are_visible(
    browser: Any, html: str, width: int, tmp_path: Path
) -> None:
    page = browser.new_page(viewport={"width": width, "height": 800})
    try:
        page.set_content(html)
        scroll = page.evaluate("document.documentElement.scrollWidth")
        assert scroll <= width, f"horizontal overflow at {width}px: {scroll}px wide"
        title = page.locator("a.card-link").first
        assert title.is_visible()
        box = title.bounding_box()
        assert box is not None and box["width"] > 100 and box["x"] + box["width"] <= width
        assert title.inner_text().startswith("Cross-Layer Cache Aggregation")
        for el in page.locator("a.card-link").all():  # the unbreakable title wraps too
            b = el.bounding_box()
            assert b is not None and b["x"] + b["width"] <= width
        shot = tmp_path / f"digest-{width}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
    finally:
        page.close()


def test_dark_mode_rules_apply(browser: Any, html: str) -> None:
    page = browser.new_page(viewport={"width": 600, "height": 800}, color_scheme="dark")
    try:
        page.set_content(html)
        card_bg = page.eval_on_selector("table.card", "e => getComputedStyle(e).backgroundColor")
        title = page.eval_on_selector("a.card-link", "e => getComputedStyle(e).color")
        assert card_bg == "rgb(30, 34, 43)" and title == "rgb(138, 180, 255)"
    finally:
        page.close()
    light = browser.new_page(viewport={"width": 600, "height": 800}, color_scheme="light")
    try:
        light.set_content(html)
        bg = light.eval_on_selector("table.card", "e => getComputedStyle(e).backgroundColor")
        assert bg == "rgb(255, 255, 255)"
    finally:
        light.close()
