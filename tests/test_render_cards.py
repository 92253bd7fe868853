"""Cards rendered once and spliced in (render/cards.py), their quoted-printable encoding kept
(delivery/mime.py), and the faster `wrap`: each must give exactly what the whole-template
path, the whole-body encoder and `textwrap` give."""

from __future__ import annotations

import email
import email.policy
import itertools
import logging
import random
import shutil
import textwrap
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from newsletter import tokens
from newsletter.delivery import mime, qp
from newsletter.models import Digest, Interest, InterestKind, Pick, SharedText, Subscriber
from newsletter.render.renderer import RenderedEmail, Renderer
from newsletter.render.views import fill, one_line
from tests.conftest import make_config
from tests.render_factory import DAY, corpus, make_digest, paper

NOW = datetime(2026, 11, 26, 7, 0, tzinfo=UTC)
HOSTILE = "<script>alert(1)</script> {{ 7*7 }} {% if x %} 100% & \"quoted\" 'single' </p>"
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


@pytest.fixture(autouse=True)
def _one_second(monkeypatch: pytest.MonkeyPatch) -> None:
    """Signed links carry the current second: hold it, so two renders can be compared."""
    monkeypatch.setattr(tokens._CLOCK, "get_timestamp", lambda: 1_795_000_000)


def _readers(marker: str = "") -> list[tuple[Digest, bool]]:
    """Digests for several readers who share papers, as (digest, first)."""
    rows = corpus()
    papers = [paper(i, rows[i % len(rows)]) for i in range(16)]
    hostile = replace(
        papers[3],
        title=f"{HOSTILE} {marker} \ue000\ue001",
        abstract=f"{HOSTILE} {marker} " + papers[3].abstract,
        authors=("Zoë Ångström", "<b>Bold</b> {{ author }}"),
    )
    papers[3] = hostile
    reasons = (
        "matches: KV cache, quantization · ▲ 42",
        "by Yann LeCun, whom you follow",
        f"like: {HOSTILE}",
        "",
        "related to: speech recognition · ▲ 120, up from 8 yesterday",
    )

    def digest(sid: int, name: str, order: list[int], n_trending: int = 3) -> Digest:
        picks = tuple(
            Pick(papers[k], 1.0 - j / 100, reason=reasons[(sid + j) % len(reasons)])
            for j, k in enumerate(order)
        )
        hot = range(13, 13 + n_trending)
        trending = tuple(Pick(papers[k], 0.5, reason="trending") for k in hot)
        interests = (
            Interest(InterestKind.KEYWORD, "KV cache"),
            Interest(InterestKind.AUTHOR, "Yann LeCun"),
            Interest(InterestKind.LIKE, "2611.10001"),
        )
        sub = Subscriber(id=sid, email=f"reader{sid}@example.org", name=name, nonce=f"n{sid:015d}")
        return Digest(sub, DAY, picks, trending, interests if sid % 2 else (), "")

    return [
        (digest(1, "Ada Lovelace", list(range(10))), False),
        (digest(2, "Zoë Ångström-Łukasiewicz 李雷", [3, 1, 0, 2, 9, 8]), True),
        (digest(3, HOSTILE, [0, 1, 2, 3], n_trending=0), False),
        (digest(4, "", [5, 3, 11, 12, 4, 7, 6, 0, 1, 2]), True),  # the same papers elsewhere
        (digest(5, "Grace", list(range(10))), False),  # the same cards as reader 1, shifted reasons
        (Digest(digest(6, "Empty", []).subscriber, DAY, (), (), (), "No new papers"), False),
    ]


def _both(cfg_path: Path, templates: str = "", **options: int) -> tuple[Renderer, Renderer]:
    cfg = make_config(cfg_path)
    if templates:
        cfg = replace(cfg, site=replace(cfg.site, templates_dir=templates))
    return Renderer(cfg, **options), Renderer(cfg, cards_once=False, **options)  # type: ignore[arg-type]


def test_cards_once_gives_every_digest_byte_for_byte_as_the_whole_template(
    tmp_path: Path,
) -> None:
    fast, whole = _both(tmp_path)
    shared = 0
    for _ in range(2):  # the second round takes every card from the cache
        for digest, first in _readers(fast.cards.marker):
            got, want = fast.for_digest(digest, first=first), whole.for_digest(digest, first=first)
            assert got.html == want.html and got.text == want.text
            assert (got.subject, got.preheader, got.dropped) == (
                want.subject,
                want.preheader,
                want.dropped,
            )
            assert "".join(got.html_parts) == got.html and "".join(got.text_parts) == got.text
            shared += sum(type(p) is SharedText for p in (*got.html_parts, *got.text_parts))
            assert "<script>" not in got.html
            assert "&lt;script&gt;" in got.html or not digest.picks
    assert shared > 100  # the cards did come from the cache


def test_the_size_guard_shortens_and_drops_the_same_on_both_paths(tmp_path: Path) -> None:
    digest = _readers()[0][0]
    full = len(Renderer(make_config(tmp_path)).digest(digest).html.encode())
    for limit in (full - 1500, full // 2, 9_000):
        fast, whole = _both(tmp_path, max_html_bytes=limit)
        got, want = fast.digest(digest), whole.digest(digest)
        assert (got.html, got.text, got.dropped) == (want.html, want.text, want.dropped)
        assert len(got.html.encode()) <= limit


def test_feed_text_holding_the_cut_marker_stays_text(tmp_path: Path) -> None:
    fast, whole = _both(tmp_path)
    marker = fast.cards.marker
    digest, _ = _readers(marker)[0]
    got, want = fast.digest(digest), whole.digest(digest)
    assert got.html == want.html and got.text == want.text
    # the marker shows where the feed put it, as text, once per place it is shown
    assert got.html.count(marker) == want.html.count(marker) > 0
    assert "&lt;script&gt;alert(1)&lt;/script&gt; {{ 7*7 }} {% if x %} 100% &amp;" in got.html


def test_a_card_block_that_reads_a_readers_field_is_rendered_whole_for_everyone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    own = tmp_path / "own"
    shutil.copytree(TEMPLATES, own)
    html = own / "email" / "digest.html"
    source = html.read_text(encoding="utf-8")
    # the reader's like link outside the nested block: it must not be cached with the paper
    html.write_text(
        source.replace(
            '<h3 class="card-title">', '<p class="x">{{ c.like_url }}</p>\n<h3 class="card-title">'
        ),
        encoding="utf-8",
    )
    fast, whole = _both(tmp_path, str(own))
    with caplog.at_level(logging.WARNING, logger="newsletter.render"):
        for digest, first in _readers()[:3]:
            got, want = fast.for_digest(digest, first=first), whole.for_digest(digest, first=first)
            assert got.html == want.html and got.text == want.text
    assert "block 'card' uses c.like_url" in caplog.text


def test_mime_of_shared_parts_is_the_whole_body_encoding(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    fast = Renderer(cfg)
    for digest, first in _readers(fast.cards.marker):
        rendered = fast.for_digest(digest, first=first)
        whole = replace(rendered, html_parts=(), text_parts=())
        args = {"message_id": "<m@example.org>", "digest_date": DAY, "now": NOW}
        raw = mime.render_bytes(cfg, digest.subscriber, rendered, **args)  # type: ignore[arg-type]
        assert raw == mime.render_bytes(cfg, digest.subscriber, whole, **args)  # type: ignore[arg-type]
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        text, html = (part.get_content().replace("\r\n", "\n") for part in msg.iter_parts())
        assert html.rstrip("\n") == rendered.html.rstrip("\n")
        assert text.rstrip("\n") == rendered.text.rstrip("\n")
        body = raw.split(b"\r\n\r\n", 1)[1]
        assert max(len(line) for line in body.split(b"\r\n")) <= 76  # RFC 2045
        assert max(len(line) for line in raw.split(b"\r\n")) <= 998  # RFC 5322


def test_quoted_printable_of_any_split_is_the_whole_encoding() -> None:
    """Shared pieces at line breaks are encoded alone; anywhere else they must not be."""
    rng = random.Random(15)
    alphabet = ["a", " ", "\t", "\n", "\r\n", "\r", ".", "=", "é", "✓", "x" * 90, " \n", "."]
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        cuts = sorted(rng.sample(range(len(text) + 1), min(len(text) + 1, rng.randint(0, 6))))
        bounds = [0, *cuts, len(text)]
        parts = tuple(
            (SharedText if rng.random() < 0.6 else str)(text[a:b])
            for a, b in itertools.pairwise(bounds)
        )
        assert qp.qp_body(text, parts) == qp.qp_whole(text), (text, parts)


def test_parts_that_do_not_add_up_are_ignored() -> None:
    text = "line one\nline two\n"
    wrong = (SharedText("line one\n"), SharedText("other\n"))
    assert qp.qp_body(text, wrong) == qp.qp_whole(text)


def test_fill_is_textwrap_for_one_line_text() -> None:
    rng = random.Random(3)
    words = ["a", "bb", "ccc", "x" * 20, "y" * 79, "é—", "https://example.org/" + "q" * 70, "a-b"]
    for _ in range(20000):
        line = one_line(" ".join(rng.choice(words) for _ in range(rng.randint(0, 30))))
        width = rng.choice([78, 20, 5])
        indent = rng.choice(["", "  ", "    "])
        first = rng.choice([indent, "* ", "10. "])
        want = textwrap.fill(
            line,
            width=width,
            initial_indent=first,
            subsequent_indent=indent,
            break_long_words=False,
            break_on_hyphens=False,
        )
        assert fill(line, width, first, indent) == want


def test_account_emails_are_unchanged_by_the_card_path(tmp_path: Path) -> None:
    fast, whole = _both(tmp_path)
    sub = make_digest(1, 0).subscriber
    a = fast.confirmation(sub, "https://example.org/confirm/x")
    b = whole.confirmation(sub, "https://example.org/confirm/x")
    assert (a.html, a.text) == (b.html, b.text)
    assert isinstance(a, RenderedEmail)
