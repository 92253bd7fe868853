"""The e-mails in a real headless Chromium: 600/1280 px desktop, 375 px phone, dark mode, and
without the <style> block (only the inlined properties), measured on the DOM geometry."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import pytest

from newsletter.render.renderer import Renderer
from tests.conftest import make_config
from tests.render_factory import corpus, make_digest, paper, subscriber

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


# -- with and without the <style> block ---------------------------------------------------------
# A client that ignores <style> (Gmail's app with a non-Google account, gateways that strip it)
# gets only the inlined properties: the layout must hold in both.

STYLE_BLOCK = re.compile(r"<style>.*?</style>", re.DOTALL)

GEOMETRY = """() => {
  const box = e => { const r = e.getBoundingClientRect();
    return {x: r.x, y: r.y, right: r.right, bottom: r.bottom, w: r.width, h: r.height}; };
  const paint = e => { for (let n = e; n; n = n.parentElement) {
    const bg = getComputedStyle(n).backgroundColor;
    if (bg !== 'rgba(0, 0, 0, 0)' && bg !== 'transparent') return bg; }
    return 'rgb(255, 255, 255)'; };
  const info = e => ({...box(e), text: e.innerText.replace(/\\s+/g, ' ').trim(),
    size: parseFloat(getComputedStyle(e).fontSize), color: getComputedStyle(e).color,
    background: paint(e), lines: e.getClientRects().length,
    visible: e.checkVisibility({opacityProperty: true, visibilityProperty: true})});
  const all = s => Array.from(document.querySelectorAll(s)).map(info);
  return {scroll: document.documentElement.scrollWidth, cards: all('table.card'),
    titles: all('a.card-link'), text: all('table.card p, p.trend, p.footer-text'),
    pills: all('a.pill'), votes: all('a.vote'), links: all('.trend-meta a, a.footer-link'),
    buttons: all('a.button'), preheader: all('.preheader')};
}"""


def without_style_block(html: str) -> str:
    bare, n = STYLE_BLOCK.subn("", html)
    assert n == 1, "the e-mail should have exactly one <style> block"
    return bare


def geometry(browser: Any, html: str, width: int) -> dict[str, Any]:
    page = browser.new_page(viewport={"width": width, "height": 900})
    try:
        page.set_content(html)
        result: dict[str, Any] = page.evaluate(GEOMETRY)
        return result
    finally:
        page.close()


def assert_readable(el: dict[str, Any], width: int, min_size: float = 12) -> None:
    assert el["visible"] and el["w"] > 0 and el["h"] > 0, el["text"]
    assert el["x"] >= 0 and el["right"] <= width + 0.5, el  # inside the screen
    assert el["size"] >= min_size, el
    assert el["color"] != el["background"], el  # not white on white


@pytest.fixture(scope="module")
def full_digest(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A real 10-pick + 3-trending digest, one title an unbreakable 120-character word."""
    rows = corpus()
    papers = [paper(i, rows[i % len(rows)]) for i in range(13)]
    papers[2] = paper(2, {"title": f"{LONG_WORD} in a title", "abstract": LONG_WORD + " text"})
    cfg = make_config(tmp_path_factory.mktemp("full"))
    return Renderer(cfg).digest(make_digest(10, 3, papers=papers)).html


@pytest.mark.parametrize("styled", [True, False], ids=["style-block", "inline-only"])
@pytest.mark.parametrize("width", [1280, 375])
def test_digest_layout_holds_with_and_without_the_style_block(
    browser: Any, full_digest: str, width: int, styled: bool
) -> None:
    g = geometry(browser, full_digest if styled else without_style_block(full_digest), width)
    assert g["scroll"] <= width, f"horizontal scroll at {width}px: {g['scroll']}px wide"
    cards = g["cards"]
    assert len(cards) == 10
    for above, below in itertools.pairwise(cards):  # one column, in order, not overlapping
        assert below["y"] >= above["bottom"] and abs(below["x"] - above["x"]) < 1
    for card in cards:
        assert card["right"] <= width and card["w"] >= min(width, 600) * 0.8, card
    assert len(g["titles"]) == 10
    for title in g["titles"]:
        assert_readable(title, width, min_size=16)
    assert g["titles"][2]["text"].startswith(LONG_WORD[:40])  # wrapped, not cut or overflowing
    for el in g["text"]:
        if el["text"]:
            assert_readable(el, width)
    labels = {"arXiv", "PDF", "Hugging Face", "Code"}
    assert g["pills"] and {p["text"] for p in g["pills"]} <= labels
    assert [v["text"] for v in g["votes"]] == ["👍 More like this", "👎 Less like this"] * 10
    for control in g["pills"] + g["votes"] + g["links"]:
        assert_readable(control, width)
        assert control["lines"] == 1, f"{control['text']!r} breaks over lines"  # keeps its words
    assert not g["preheader"][0]["visible"] or g["preheader"][0]["h"] == 0


@pytest.mark.parametrize("styled", [True, False], ids=["style-block", "inline-only"])
@pytest.mark.parametrize("width", [1280, 375])
def test_confirm_button_stays_a_button_with_and_without_the_style_block(
    browser: Any, tmp_path: Path, width: int, styled: bool
) -> None:
    html = Renderer(make_config(tmp_path)).confirmation(subscriber(), "http://x.test/c/TOKEN").html
    g = geometry(browser, html if styled else without_style_block(html), width)
    assert g["scroll"] <= width
    (button,) = g["buttons"]
    assert button["text"] == "Yes, send me papers" and button["lines"] == 1
    assert_readable(button, width, min_size=16)
    assert button["background"] == "rgb(26, 86, 219)" and button["color"] == "rgb(255, 255, 255)"
    assert button["h"] >= 40 and button["w"] >= 150  # padded like a button, not a bare link
