"""Styling once per template gives the same e-mail as premailer on every e-mail; the <style>
block is the whole stylesheet, and no property is both inlined and in the block."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import lxml.html
import pytest

from newsletter.config import REPO_TEMPLATES
from newsletter.errors import ConfigError
from newsletter.render.inline import compact, flatten, inline_template, mask, style_block, unmask
from newsletter.render.renderer import Renderer
from tests.conftest import make_config
from tests.render_factory import corpus, make_digest, paper, subscriber

TOKEN_TIME = re.compile(r"(/[a-z]+/[\w-]+)\.[\w-]+\.[\w-]+")


def _style(value: str) -> dict[str, str]:
    pairs = (d.split(":", 1) for d in value.split(";") if ":" in d)
    return {k.strip(): v.strip() for k, v in pairs}


def _attrs(el: lxml.html.HtmlElement) -> dict[str, str]:
    """Attributes, with signed tokens' time stamp and signature blanked (they tick each second)."""
    return {k: TOKEN_TIME.sub(r"\1.T.S", v) for k, v in el.attrib.items() if k != "style"}


def _norm(text: str | None) -> str:
    return " ".join((text or "").split())


def assert_same_dom(a: str, b: str) -> None:
    """Same elements in the same order, same attributes (styles as property maps), same text."""
    left = list(lxml.html.document_fromstring(a).iter())
    right = list(lxml.html.document_fromstring(b).iter())
    assert len(left) == len(right)
    for x, y in zip(left, right, strict=True):
        assert x.tag == y.tag
        assert _style(x.get("style", "")) == _style(y.get("style", "")), (x.tag, x.get("class"))
        assert _attrs(x) == _attrs(y)
        assert _norm(x.text) == _norm(y.text), x.tag
        assert _norm(x.tail) == _norm(y.tail), x.tag


@pytest.fixture
def renderers(tmp_path: Path) -> tuple[Renderer, Renderer]:
    cfg = make_config(tmp_path)
    return Renderer(cfg), Renderer(cfg, inline_per_email=True)


def test_cached_digest_equals_premailer_per_email(renderers: tuple[Renderer, Renderer]) -> None:
    cached, per_email = renderers
    row = corpus()[3]
    tricky = paper(
        0, row, title='<td class="card">x</td> & $\\alpha$', abstract="</table>" + row["abstract"]
    )
    for digest in (
        make_digest(8, 3),
        make_digest(1, 0, papers=[tricky]),
        make_digest(0, 0, empty_reason="Nothing was announced."),
    ):
        fast, slow = cached.digest(digest), per_email.digest(digest)
        assert_same_dom(fast.html, slow.html)
        with pytest.raises(AssertionError):  # the comparison does see a missing inline style
            assert_same_dom(fast.html, slow.html.replace('style="', 'data-x="', 3))
        assert TOKEN_TIME.sub("T", fast.text) == TOKEN_TIME.sub("T", slow.text)
        assert fast.subject == slow.subject


def test_cached_account_emails_equal_premailer(renderers: tuple[Renderer, Renderer]) -> None:
    cached, per_email = renderers
    sub = subscriber()
    url = "http://127.0.0.1:8000/confirm/abc"
    assert_same_dom(cached.confirmation(sub, url).html, per_email.confirmation(sub, url).html)
    assert_same_dom(cached.unsubscribed(sub, url).html, per_email.unsubscribed(sub, url).html)
    digest = make_digest(2, 1)
    assert_same_dom(cached.welcome(digest).html, per_email.welcome(digest).html)


def test_the_cached_template_is_inlined_once(renderers: tuple[Renderer, Renderer]) -> None:
    cached, _ = renderers
    first = cached.html_template("digest")
    cached.digest(make_digest(2, 0))
    assert cached.html_template("digest") is first
    assert 'class="card"' in cached.digest(make_digest(1, 0)).html


def test_flatten_resolves_extends_blocks_super_and_include() -> None:
    sources = {
        "base": "<html>{% block head %}H{% endblock %}|{% block body %}"
        "{% block inner %}I{% endblock %}{% endblock %}</html>",
        "mid": '{% extends "base" %}{% block inner %}M[{{ super() }}]{% endblock %}',
        "leaf": '{% extends "mid" %}{# note #}{% block head %}{% include "part" %}{% endblock %}',
        "part": "P{{ x }}",
    }
    flat = flatten("leaf", sources.__getitem__)
    import jinja2

    assert jinja2.Environment().from_string(flat).render(x=1) == "<html>P1|M[I]</html>"


def test_jinja_survives_premailer_and_misuse_is_reported() -> None:
    source = (
        '<html><head></head><body><table class="t">{% for r in rows %}<tr><td class="c" '
        'title="{{ r }}">{{ r }}</td></tr>{% endfor %}</table></body></html>'
    )
    out = inline_template("t.html", source, ".c { color: red }")
    assert "{% for r in rows %}" in out and 'title="{{ r }}"' in out
    assert 'style="color:red"' in out
    masked, originals = mask('<p style="{{ s }}">x</p>')
    with pytest.raises(ConfigError, match="premailer dropped the Jinja tag"):
        unmask(masked.replace("JV00000J", ""), originals, "bad.html")


def _rules(css: str) -> list[str]:
    """The stylesheet's rules as cssutils serialises them, comments left out."""
    import cssutils

    cssutils.log.setLevel(logging.CRITICAL)
    sheet = cssutils.CSSParser(validate=False).parseString(css)
    return [r.cssText for r in sheet if r.type != r.COMMENT]


def test_style_block_is_the_whole_stylesheet_minified() -> None:
    css = (REPO_TEMPLATES / "email" / "email.css").read_text(encoding="utf-8")
    block = style_block(css)
    assert block.startswith("<style>") and block.endswith("</style>")
    minified = block[len("<style>") : -len("</style>")]
    assert _rules(minified) == _rules(css)  # nothing lost or changed, comments aside
    assert "and (max-width:620px)" in minified  # `and(` would be a function: the query dead
    assert _rules(minified.replace("padding:0;", "", 1)) != _rules(css)  # the check sees loss
    assert "/*" not in minified and "\n" not in minified
    assert len(minified) < len(css) * 0.8
    assert len(block.encode()) < 16 * 1024  # Gmail is reported to drop a larger <style>
    # Class and tag selectors only: Gmail knows no attribute selectors and few pseudo-classes.
    selectors = [s for s in re.findall(r"([^{}]+)\{", minified) if not s.startswith("@")]
    assert len(selectors) > 30 and not [s for s in selectors if re.search(r"[\[:]", s)]
    for bad in ("p { color: red } </style><script>", "p { color: red } {% endraw %}"):
        with pytest.raises(ConfigError, match="must not contain"):
            style_block(bad)
    assert style_block("p{width:100%}") == "<style>p{width:100%}</style>"


def test_a_property_is_inlined_or_in_the_style_block_never_both() -> None:
    """An inline value beats a class rule, so the same property for the same selector in the
    <style> block would be dead; only !important overrides (phone, dark) may repeat one."""
    import cssutils

    cssutils.log.setLevel(logging.CRITICAL)

    def props(name: str) -> dict[str, set[str]]:
        text = (REPO_TEMPLATES / "email" / name).read_text(encoding="utf-8")
        out: dict[str, set[str]] = {}
        for rule in cssutils.CSSParser(validate=False).parseString(text):
            if rule.type == rule.STYLE_RULE:  # top level only: not inside @media
                for sel in rule.selectorList:
                    out.setdefault(sel.selectorText, set()).update(p.name for p in rule.style)
        return out

    inline, block = props("email-inline.css"), props("email.css")
    assert inline and block
    for selector, names in inline.items():
        assert not names & block.get(selector, set()), selector
    assert not {"margin", "line-height", "border-radius"} & inline[".card"]  # looks stay out


def test_compact_drops_indentation_and_keeps_every_line_break() -> None:
    source = "<tr>\n    <td>\n      <p>a\n      b</p>  \n\n    </td>\n</tr>\n"
    assert compact(source) == "<tr>\n<td>\n<p>a\nb</p>\n</td>\n</tr>\n"


def test_templates_dir_without_the_inline_stylesheet_is_a_clear_error(tmp_path: Path) -> None:
    import shutil
    from dataclasses import replace

    own = tmp_path / "mine"
    shutil.copytree(REPO_TEMPLATES / "email", own / "email")
    (own / "email" / "email-inline.css").unlink()
    cfg = make_config(tmp_path)
    cfg = replace(cfg, site=replace(cfg.site, templates_dir=str(own)))
    with pytest.raises(ConfigError, match=r"email-inline\.css"):
        Renderer(cfg)
