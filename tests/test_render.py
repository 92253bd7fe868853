"""The digest e-mail as a reader's client gets it: DOM, links, escaping, size guard, subject."""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from pathlib import Path

import lxml.html
import pytest

from newsletter.errors import ConfigError
from newsletter.render import views
from newsletter.render.renderer import MAX_HTML_BYTES, RenderedEmail, Renderer
from newsletter.tokens import read_token
from tests.conftest import SECRET, make_config
from tests.render_factory import corpus, make_digest, paper, subscriber

URL = re.compile(r"https?://\S+")


def dom(html: str) -> lxml.html.HtmlElement:
    return lxml.html.document_fromstring(html)


def words(el: lxml.html.HtmlElement) -> str:
    """An element's text as a reader sees it (a control's no-break spaces read as spaces)."""
    return " ".join(el.text_content().split())


@pytest.fixture
def renderer(tmp_path: Path) -> Renderer:
    return Renderer(make_config(tmp_path))


def test_digest_cards_are_styled_absolute_and_script_free(renderer: Renderer) -> None:
    out = renderer.digest(make_digest(5, 3))
    doc = dom(out.html)
    cards = doc.cssselect("table.card")
    assert len(cards) == 5
    for c in cards:  # what a client without <style> needs is inline: the card's box...
        assert "border:1px solid" in c.get("style", "") and c.get("cellpadding") == "16"
        assert "color:" in c.cssselect("a.card-link")[0].get("style", "")
        assert all("color:" in a.get("style", "") for a in c.cssselect("a.pill, a.vote"))
    container = doc.cssselect("table.container")[0].get("style", "")
    assert "width:100%" in container and "max-width:600px" in container
    assert "font-size:14px" in doc.cssselect("table.outer")[0].get("style", "")
    hrefs = [a.get("href") for a in doc.iter("a")]
    assert hrefs and all(h.startswith(("https://", "http://127.0.0.1:8000/")) for h in hrefs)
    assert not doc.cssselect("script, link, iframe, form, object, embed")
    assert all(img.get("alt") for img in doc.iter("img"))
    assert "@import" not in out.html and "fonts.googleapis" not in out.html
    # ...and the rest is one <style> block in <head>, the phone and dark rules included.
    blocks = doc.cssselect("style")
    assert len(blocks) == 1 and blocks[0].getparent().tag == "head"
    style = blocks[0].text_content()
    assert "prefers-color-scheme:dark" in style and "max-width:620px" in style
    for rule in (".card{", ".excerpt{", ".pill{", ".tldr{", ".footer-text{"):
        assert rule in style, rule
    assert doc.cssselect('meta[name="color-scheme"]')


def test_digest_content_header_cards_trending_footer(renderer: Renderer) -> None:
    digest = make_digest(5, 3)
    out = renderer.digest(digest)
    doc = dom(out.html)
    masthead = doc.cssselect("td.masthead")[0].text_content()
    assert "Thursday 26 November 2026" in masthead
    assert "KV cache · quantization · cs.CL · not: crypto" in masthead
    first = doc.cssselect("table.card")[0]
    p0 = digest.picks[0].paper
    link = first.cssselect("a.card-link")[0]
    assert link.get("href") == f"https://arxiv.org/abs/{p0.id}"
    assert link.text_content() == p0.title
    assert first.cssselect("p.meta")[0].text_content() == "#1 · cs.LG"
    # Why it matches, then its counts, each once (the ranker's '▲ 120' is not repeated).
    reason = first.cssselect("p.reason")[0].text_content()
    assert reason == "matches: KV cache, quantization · ▲ 120 upvotes · ★ 1,500 stars"
    pills = {words(a): a.get("href") for a in first.cssselect("a.pill")}
    assert pills == {
        "arXiv": f"https://arxiv.org/abs/{p0.id}",
        "PDF": f"https://arxiv.org/pdf/{p0.id}",
        "Hugging Face": f"https://huggingface.co/papers/{p0.id}",
        "Code": "https://github.com/example/repo-0",
    }
    # Paper 2 is arXiv-only without code: neither an HF nor a code link.
    third = {words(a) for a in doc.cssselect("table.card")[2].cssselect("a.pill")}
    assert third == {"arXiv", "PDF", "Code"}
    votes = [a.get("href") for a in first.cssselect("a.vote")]
    data = [read_token(SECRET, "feedback", v.rsplit("/", 1)[1]) for v in votes]
    assert [(d.subscriber_id, d.extra) for d in data] == [
        (7, {"p": p0.id, "v": 1}),
        (7, {"p": p0.id, "v": -1}),
    ]
    trending = doc.cssselect("td.trend-list")[0].text_content()
    assert "Trending today" in out.html and digest.trending[0].paper.title[:40] in trending
    footer = doc.cssselect("td.footer")[0]
    footer_links = {words(a): a.get("href") for a in footer.iter("a")}
    assert footer_links["Unsubscribe"].startswith("http://127.0.0.1:8000/unsubscribe/")
    assert footer_links["Manage preferences"].startswith("http://127.0.0.1:8000/manage/")
    assert "reader@example.org" in footer.text_content()
    assert "1 Test Street" in footer.text_content()
    assert out.preheader.startswith(p0.title[:30])
    assert out.preheader in doc.cssselect("div.preheader")[0].text_content()


def test_excerpt_is_cut_at_a_word_boundary(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, "[digest]\nexcerpt_chars = 120\n")
    digest = make_digest(1, 0)
    out = Renderer(cfg).digest(digest)
    excerpt = dom(out.html).cssselect("p.excerpt")[0].text_content()
    assert len(excerpt) <= 120 and excerpt.endswith("…")
    assert digest.picks[0].paper.abstract.startswith(excerpt[:-1])
    assert digest.picks[0].paper.abstract[len(excerpt) - 1] in " ,.;:"


def test_feed_markup_is_escaped_not_executed(renderer: Renderer) -> None:
    row = corpus()[0]
    evil = paper(
        0,
        row,
        title='<script>alert("t")</script> Cats & <b>Dogs</b>',
        abstract="We show </td></tr></table><script>alert(1)</script><img src=x onerror=y> "
        + row["abstract"],
        authors=("Eve <i>Evil</i>",),
        github_repo="javascript:alert(1)",
    )
    out = renderer.digest(make_digest(1, 0, papers=[evil]))
    doc = dom(out.html)
    assert not doc.cssselect("script, img, b, i")
    card = doc.cssselect("table.card")[0]
    assert card.cssselect("a.card-link")[0].text_content().startswith("<script>alert(")
    assert "</td></tr></table><script>" in card.cssselect("p.excerpt")[0].text_content()
    assert "Eve <i>Evil</i>" in card.cssselect("p.authors")[0].text_content()
    assert "Code" not in {a.text_content() for a in card.cssselect("a.pill")}
    assert len(doc.cssselect("td.footer")) == 1  # the layout after the card is intact
    assert "<script>" not in out.html and "javascript:" not in out.html


def test_latex_in_titles_and_abstracts_is_readable(renderer: Renderer) -> None:
    row = {
        "title": r"A$^2$ATS: $\alpha$-\textbf{Sparse} Attention",
        "abstract": r"$O(n^2)$ to $\mathcal{O}(n)$",
    }
    out = renderer.digest(make_digest(1, 0, papers=[paper(0, row)]))
    card = dom(out.html).cssselect("table.card")[0]
    assert card.cssselect("a.card-link")[0].text_content() == "A²ATS: α-Sparse Attention"
    assert card.cssselect("p.excerpt")[0].text_content() == "O(n²) to 𝒪(n)"
    assert "A²ATS: α-Sparse Attention" in out.text and "A²ATS" in out.subject


def test_subject_is_one_line_from_the_template(tmp_path: Path) -> None:
    cfg = make_config(
        tmp_path, '[email]\nsubject_template = "{count} for {name} on {date:%d %b}: {top_title}"\n'
    )
    row = {"title": "Bad\r\nBcc: victim@example.org\x00 title\u2028here", "abstract": "x"}
    out = Renderer(cfg).digest(make_digest(1, 0, papers=[paper(0, row)]))
    assert out.subject == "1 for Rea Der on 26 Nov: Bad Bcc: victim@example.org title here"
    assert not re.search(r"[\x00-\x1f\u2028]", out.subject)


def test_bad_subject_template_is_a_config_error(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, '[email]\nsubject_template = "Papers {when}"\n')
    with pytest.raises(ConfigError, match=r"subject_template.*\{date\}, \{top_title\}"):
        Renderer(cfg)


def test_empty_digest_explains_itself(renderer: Renderer) -> None:
    reason = "No new papers were announced today (arXiv does not publish on weekends)."
    out = renderer.digest(make_digest(0, 0, empty_reason=reason))
    doc = dom(out.html)
    assert not doc.cssselect("table.card")
    assert reason in doc.text_content() and "Nothing new for you today" in doc.text_content()
    assert out.preheader == reason and reason[:40] in out.text
    assert "no new matching papers today" in out.subject


def _maximal_digest(n: int) -> object:
    long_abstract = " ".join(r["abstract"] for r in corpus()[:4])  # ~6,000 characters
    papers = [
        paper(
            i,
            {"title": "Very long title about attention " * 8, "abstract": long_abstract},
            authors=tuple(f"Author Number {k} of a Large Collaboration" for k in range(60)),
        )
        for i in range(n)
    ]
    return make_digest(n, 0, papers=papers)


def test_25_maximal_picks_stay_under_the_size_guard(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, "[digest]\nexcerpt_chars = 5000\n")
    out = Renderer(cfg).digest(_maximal_digest(25))  # type: ignore[arg-type]
    assert len(out.html.encode()) <= MAX_HTML_BYTES
    doc = dom(out.html)
    assert len(doc.cssselect("table.card")) + out.dropped == 25
    assert all("border" in c.get("style", "") for c in doc.cssselect("table.card"))


def test_size_guard_shortens_then_drops_and_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = make_config(tmp_path)
    digest = make_digest(10, 3)
    full = Renderer(cfg).digest(digest)
    limit = len(full.html.encode()) - 2000
    with caplog.at_level(logging.WARNING, logger="newsletter.render"):
        shortened = Renderer(cfg, max_html_bytes=limit).digest(digest)
    assert shortened.dropped == 0 and len(shortened.html.encode()) <= limit
    assert "excerpts shortened" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="newsletter.render"):
        dropped = Renderer(cfg, max_html_bytes=20_000).digest(digest)
    assert dropped.dropped > 0 and len(dropped.html.encode()) <= 20_000
    assert f"dropped {dropped.dropped} of 13 item(s)" in caplog.text
    doc = dom(dropped.html)
    kept = len(doc.cssselect("table.card")) + len(doc.cssselect("p.trend"))
    assert kept + dropped.dropped == 13
    assert "did not fit in this e-mail" in doc.cssselect("td.footer")[0].text_content()
    assert "did not fit in this e-mail" in dropped.text
    assert digest.picks[9].paper.id not in dropped.text  # the text part drops the same items


def test_text_part_wraps_at_78_and_has_every_link(renderer: Renderer) -> None:
    out = renderer.digest(make_digest(6, 3))
    for line in out.text.splitlines():
        assert len(line) <= 78 or URL.fullmatch(line.strip()), line
    html_links = {a.get("href") for a in dom(out.html).iter("a")}
    text_links = set(URL.findall(out.text))
    assert html_links <= text_links, html_links - text_links
    assert "TRENDING IN YOUR TOPICS" in out.text and "TRENDING TODAY" in out.text
    assert not re.search(r"<(p|a|td|span)\b|&amp;|&#", out.text)  # plain text, not HTML


def test_account_text_parts_wrap_and_carry_their_links(renderer: Renderer) -> None:
    sub = subscriber(email="a.very.long.address.for.wrapping@subdomain.example.org")
    url = "http://127.0.0.1:8000/confirm/" + "x" * 120
    for out in (renderer.confirmation(sub, url), renderer.unsubscribed(sub, url)):
        assert url in out.text.splitlines()
        for line in out.text.splitlines():
            assert len(line) <= 78 or URL.fullmatch(line.strip()), line


def test_text_part_is_not_html_escaped(renderer: Renderer) -> None:
    row = {"title": "Cats & Dogs <3", "abstract": 'It\'s "quoted" & fine'}
    out = renderer.digest(make_digest(1, 0, papers=[paper(0, row)]))
    assert "Cats & Dogs <3" in out.text and 'It\'s "quoted" & fine' in out.text


def test_account_emails_share_the_base_template(renderer: Renderer) -> None:
    sub = subscriber(name="Ann\r\nBcc: x@evil.test")
    confirm = renderer.confirmation(sub, "http://127.0.0.1:8000/confirm/TOKEN")
    gone = renderer.unsubscribed(sub, "http://127.0.0.1:8000/subscribe")
    welcome = renderer.welcome(make_digest(3, 1))
    for out, url in (
        (confirm, "http://127.0.0.1:8000/confirm/TOKEN"),
        (gone, "http://127.0.0.1:8000/subscribe"),
        (welcome, "http://127.0.0.1:8000/manage/"),
    ):
        assert isinstance(out, RenderedEmail)
        doc = dom(out.html)
        assert doc.cssselect("td.masthead a.brand")[0].get("style")
        assert "1 Test Street" in doc.cssselect("td.footer")[0].text_content()
        assert any(a.get("href", "").startswith(url) for a in doc.iter("a"))
        assert url in out.text and "\n" not in out.subject
        assert not doc.cssselect("script")
    assert confirm.subject == "Confirm your subscription to Test Digest"
    assert dom(confirm.html).cssselect("a.button")[0].get("style")
    assert "Ann Bcc: x@evil.test" in confirm.text
    assert gone.subject == "You are unsubscribed from Test Digest"
    assert welcome.subject.startswith("Welcome to Test Digest: ")
    assert "Welcome, Rea Der!" in dom(welcome.html).text_content()
    assert len(dom(welcome.html).cssselect("table.card")) == 3


def test_missing_templates_dir_is_a_config_error(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    moved = replace(cfg, site=replace(cfg.site, templates_dir=str(tmp_path / "nowhere")))
    with pytest.raises(ConfigError, match=r"site\.templates_dir"):
        Renderer(moved)


def test_one_huge_title_is_shortened_and_keeps_the_rest_of_the_digest(renderer: Renderer) -> None:
    rows = corpus()
    papers = [paper(i, rows[i % len(rows)]) for i in range(9)]
    papers[0] = replace(papers[0], title="Attention " * 15_000)  # 150 KB
    papers[2] = replace(papers[2], authors=("Ann " * 40_000, "Bo Chen"))
    digest = make_digest(6, 3, papers=papers)
    out = renderer.digest(digest)
    assert (out.dropped, out.nothing_fits) == (0, False)
    assert len(out.html.encode()) <= MAX_HTML_BYTES
    doc = dom(out.html)
    titles = [a.text_content() for a in doc.cssselect("a.card-link")]
    assert len(titles) == 6 and len(doc.cssselect("p.trend")) == 3
    assert len(titles[0]) <= views.CARD_TITLE_CHARS and titles[0].endswith("…")
    assert titles[1:] == [p.title for p in papers[1:6]]
    authors = doc.cssselect("p.authors")[2].text_content()
    assert len(authors) < 2 * views.AUTHOR_NAME_CHARS and authors.endswith("…, Bo Chen")
    assert digest.trending[-1].paper.id in out.text and len(out.text) < 60_000


def test_a_digest_in_which_no_pick_fits_says_so(tmp_path: Path) -> None:
    digest = make_digest(3, 2)
    out = Renderer(make_config(tmp_path), max_html_bytes=2_000).digest(digest)
    assert out.nothing_fits and out.dropped == 5
    assert not dom(out.html).cssselect("table.card")


@pytest.mark.parametrize(
    ("repo", "shown"),
    [
        ("https://github.com/owner/name", "https://github.com/owner/name"),
        ("owner/name", "https://github.com/owner/name"),
        ("https://gitlab.com/group/project", "https://gitlab.com/group/project"),
        ("https://huggingface.co/spaces/a/b", "https://huggingface.co/spaces/a/b"),
        ("http://www.github.com/a/b", "http://www.github.com/a/b"),
        ("https://evil.example/owner/name", ""),
        ("https://github.com.evil.example/a/b", ""),
        ("https://github.com@evil.example/a/b", ""),
        ("https://github.com:8443/a/b", ""),
        ("ftp://github.com/a/b", ""),
        ("javascript:alert(1)", ""),
        ("https://github.com/" + "a" * 400, ""),
    ],
)
def test_the_code_link_is_only_shown_for_known_code_hosts(
    renderer: Renderer, repo: str, shown: str
) -> None:
    out = renderer.digest(make_digest(1, 0, papers=[paper(0, corpus()[0], github_repo=repo)]))
    pills = {a.text_content(): a.get("href") for a in dom(out.html).cssselect("a.pill")}
    assert pills.get("Code", "") == shown
    assert (f"Code: {shown}" in out.text) == bool(shown)


def test_hugging_face_summary_is_a_tldr_line_above_the_excerpt(renderer: Renderer) -> None:
    rows = corpus()
    summary = "A one-line summary with $\\alpha$-scaling & <b>no</b> markup."
    papers = [
        paper(0, rows[0], ai_summary=summary),
        paper(1, rows[1]),  # no summary from Hugging Face: no TL;DR line
    ]
    out = renderer.digest(make_digest(2, 0, papers=papers))
    cards = dom(out.html).cssselect("table.card")
    first = cards[0].cssselect("td.card-cell")[0]
    tldr = first.cssselect("p.tldr")
    assert [t.text_content() for t in tldr] == [
        "TL;DR A one-line summary with α-scaling & <b>no</b> markup."
    ]
    classes = [el.get("class") for el in first if el.tag == "p"]
    assert classes.index("tldr") == classes.index("excerpt") - 1
    assert ".tldr{" in dom(out.html).cssselect("style")[0].text_content()
    assert not cards[1].cssselect("p.tldr")
    text = out.text
    assert "    TL;DR: A one-line summary with α-scaling & <b>no</b> markup." in text
    assert text.index("TL;DR:") < text.index(views.readable(rows[0]["abstract"])[:30])
    assert text.count("TL;DR") == 1


def test_every_control_and_count_carries_words_and_no_count_is_zero(renderer: Renderer) -> None:
    rows = corpus()
    papers = [
        paper(0, rows[0], upvotes=42, comments=1, github_stars=1310),
        paper(1, rows[1], upvotes=0, comments=0, github_stars=None),  # HF knows it, no one voted
        paper(2, rows[2], upvotes=3, comments=0, github_stars=0),
    ]
    digest = make_digest(2, 1, papers=papers)
    # The ranker's own reasons carry no zero counts (its figures skip them).
    picks = tuple(
        replace(p, reason=f"matches: KV cache · ▲ {p.paper.upvotes}") for p in digest.picks
    )
    digest = replace(digest, picks=(*picks[:1], replace(picks[1], reason="matches: KV cache")))
    for out in (renderer.digest(digest), renderer.welcome(digest)):
        doc = dom(out.html)
        lines = [m.text_content() for m in doc.cssselect("p.reason, span.trend-meta")]
        assert lines[0] == "matches: KV cache · ▲ 42 upvotes · 💬 1 comment · ★ 1,310 stars"
        assert lines[1] == "matches: KV cache"  # no '▲ 0', '💬 0' or '★ 0'
        assert lines[2].startswith("cs.CV · ▲ 3 upvotes")
        assert not re.search(r"[▲💬★] 0\b", out.html + out.text)
        for a in doc.iter("a"):  # every link reads as words, not only as a glyph
            assert re.search(r"[A-Za-z]{3}", a.text_content()), a.text_content()
        glyphs = re.compile(r"[▲💬★👍👎]")
        for el in doc.iter("p", "span", "a"):
            for m in glyphs.finditer(words(el)):
                after = words(el)[m.end() :][:20]
                assert re.match(r" ([\d,]+ )?[A-Za-z]", after), el.text_content()
        assert "▲ 42 upvotes · 💬 1 comment · ★ 1,310 stars" in out.text


def test_trending_matches_lead_then_new_ones_nobody_has_upvoted(renderer: Renderer) -> None:
    rows = corpus()
    papers = [
        paper(0, rows[0], upvotes=None, comments=None, github_stars=None),  # ranked first, new
        paper(1, rows[1], upvotes=12, comments=None, github_stars=None),
        paper(2, rows[2], upvotes=0, comments=0, github_stars=40),  # stars alone: not trending
        paper(3, rows[3], upvotes=None, comments=2, github_stars=None),
    ]
    digest = make_digest(4, 0, papers=papers)
    out = renderer.digest(digest)
    doc = dom(out.html)
    headings = [h.text_content() for h in doc.cssselect("h2.section-title")]
    assert headings == ["Trending in your topics", "New in your topics"]
    ids = [a.get("href").rsplit("/", 1)[1] for a in doc.cssselect("a.card-link")]
    assert ids == [papers[1].id, papers[3].id, papers[0].id, papers[2].id]
    ranks = [r.text_content() for r in doc.cssselect("span.rank")]
    assert ranks == ["#1", "#2", "#3", "#4"]
    reasons = [r.text_content() for r in doc.cssselect("p.reason")]
    assert reasons[0] == "matches: KV cache, quantization · ▲ 12 upvotes"
    assert reasons[1] == "matches: KV cache, quantization · 💬 2 comments"
    assert reasons[3] == "matches: KV cache, quantization · ★ 40 stars"
    text = out.text
    assert text.index("TRENDING IN YOUR TOPICS") < text.index("NEW IN YOUR TOPICS")
    assert text.index(papers[3].title[:30]) < text.index("NEW IN YOUR TOPICS")
    assert "Why: matches: KV cache, quantization · ▲ 12 upvotes" in text
    # A reader without interests gets the same split, named for the day instead.
    bare = renderer.digest(replace(digest, interests=(), trending=(digest.picks[0],)))
    titles = [h.text_content() for h in dom(bare.html).cssselect("h2.section-title")]
    assert titles == ["Most trending today", "New today", "Trending today"]  # no heading twice


def test_the_interests_line_names_three_liked_papers_and_counts_more() -> None:
    from newsletter.models import Interest, InterestKind

    def like(n: int) -> Interest:
        return Interest(InterestKind.LIKE, f"2401.{n:05d}")

    kv = Interest(InterestKind.KEYWORD, "KV cache")
    ann = Interest(InterestKind.AUTHOR, "Ann Lee")
    avoid = Interest(InterestKind.NOT_KEYWORD, "crypto")
    unwanted = Interest(InterestKind.NOT_PAPER, "2401.99999")
    assert views.interests_line(()) == ""
    assert views.interests_line((kv, unwanted)) == "KV cache"
    three = (kv, like(1), like(2), ann, like(3))
    assert views.interests_line(three) == (
        "KV cache · like 2401.00001 · like 2401.00002 · following Ann Lee · like 2401.00003"
    )
    four = (like(1), kv, like(2), like(3), like(4), avoid)
    assert views.interests_line(four) == "4 liked papers · KV cache · not: crypto"
    assert views.interests_line(tuple(like(i) for i in range(1204))) == "1,204 liked papers"
