"""Inlining the CSS once per template gives the same e-mail as premailer on every e-mail."""

from __future__ import annotations

import re
from pathlib import Path

import lxml.html
import pytest

from newsletter.errors import ConfigError
from newsletter.render.inline import flatten, inline_template, mask, unmask
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
