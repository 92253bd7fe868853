"""Render e-mails: Jinja2 (autoescape, StrictUndefined) on templates styled once.

`Renderer(cfg)` builds the environment once. The first time a template is used it is compacted,
the few properties every client needs (`templates/email/email-inline.css`) are inlined into its
own markup and the rest of the styling (`email.css`) is added as one `<style>` block (see
`inline.py`); the result is compiled and cached, so each e-mail costs one Jinja2 render. Every
message has an HTML part and a plain-text part from its own template, and the digest HTML is
kept under `MAX_HTML_BYTES` (Gmail clips at about 102 KB): excerpts are shortened first, then
items dropped from the end (trending before picks). A card shows at most a bounded amount of
each feed field (`views.CARD_TITLE_CHARS` and its neighbours), so one oversized paper is
shortened rather than pushing the others out; a digest in which not one pick fits is marked
`nothing_fits`, and the send run skips it with that reason instead of mailing an empty digest.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import jinja2

from newsletter import links
from newsletter.config import Config
from newsletter.errors import ConfigError
from newsletter.models import Digest, Pick, Subscriber
from newsletter.render.cards import CardCache, Parts, joined
from newsletter.render.inline import compact, flatten, inline_template, style_block, style_email
from newsletter.render.views import (
    CardView,
    card,
    interests_line,
    link_line,
    link_lines,
    long_date,
    nowrap,
    one_line,
    preheader,
    sections,
    shorten,
    top_title,
    trending_first,
    wrap,
)

log = logging.getLogger(__name__)

MAX_HTML_BYTES = 100_000
STYLESHEET = "email/email.css"  # the <style> block
INLINE_STYLESHEET = "email/email-inline.css"  # inlined as style attributes
SUBJECT_FIELDS = "{date}, {top_title}, {count}, {name}"


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str
    preheader: str
    dropped: int = 0  # digest items left out to keep the HTML under the size guard
    nothing_fits: bool = False  # not one pick fits under the size guard: do not send it
    # `html` and `text` in pieces that end at line breaks (empty: one piece); the cards every
    # digest of a paper shares are `SharedText`, so the MIME encoder can keep their encoding
    html_parts: tuple[str, ...] = ()
    text_parts: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Output:
    html: str
    text: str
    html_parts: tuple[str, ...] = ()
    text_parts: tuple[str, ...] = ()


class Renderer:
    """Renders digests and the account e-mails from `cfg.templates_dir/email/`."""

    def __init__(
        self,
        cfg: Config,
        *,
        inline_per_email: bool = False,
        max_html_bytes: int = MAX_HTML_BYTES,
        cards_once: bool = True,
        styled: Mapping[str, str] | None = None,
    ) -> None:
        """`inline_per_email=True` is the slow reference path (premailer on every e-mail);
        `cards_once=False` renders every card for every reader (the reference the card cache,
        `cards.py`, is compared with). `styled`: template sources another renderer with the
        same settings has styled (`styled_sources`), so this one need not style them again."""
        self.cfg = cfg
        self.inline_per_email = inline_per_email
        self.cards_once = cards_once and not inline_per_email
        self.max_html_bytes = max_html_bytes
        root = Path(cfg.templates_dir)
        if not (root / STYLESHEET).is_file():
            raise ConfigError(
                f"no e-mail stylesheet at {root / STYLESHEET}: site.templates_dir must point at a "
                "folder with email/ templates (copy the project's templates/ folder)"
            )
        if not (root / INLINE_STYLESHEET).is_file():
            raise ConfigError(
                f"no {root / INLINE_STYLESHEET}: e-mails now inline only the properties in that "
                f"file and send {STYLESHEET} as a <style> block; copy email-inline.css from the "
                "project's templates/email/ and drop those properties from your email.css"
            )
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(root)),
            autoescape=jinja2.select_autoescape(("html", "htm", "xml"), default_for_string=True),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self.env.filters.update(wrap=wrap, num=lambda n: f"{n:,}", nowrap=nowrap)
        self.env.globals.update(link_line=link_line, link_lines=link_lines)
        self.inline_css = self._source(INLINE_STYLESHEET)
        self.style_block = style_block(self._source(STYLESHEET))
        self._html: dict[str, jinja2.Template] = {}
        self._styled = dict(styled or {})
        self._text: dict[str, jinja2.Template] = {}
        self._check_subject_template()
        site = self._common_site()
        self.cards = CardCache(site)

    # -- templates -----------------------------------------------------------------------
    def _source(self, name: str) -> str:
        assert self.env.loader is not None
        try:
            return self.env.loader.get_source(self.env, name)[0]
        except jinja2.TemplateNotFound:
            raise ConfigError(
                f"e-mail template {name} is missing from {self.cfg.templates_dir}"
            ) from None

    def html_template(self, name: str) -> jinja2.Template:
        """The compiled HTML template, with the stylesheet inlined once (cached)."""
        template = self._html.get(name)
        if template is None:
            path = f"email/{name}.html"
            code = self.env.compile(self.styled_source(name), name=path, filename=path)
            template = jinja2.Template.from_code(self.env, code, self.env.make_globals(None))
            self._html[name] = template
        return template

    def text_template(self, name: str) -> jinja2.Template:
        """The compiled plain-text template (cached: the loader would stat its file per use)."""
        template = self._text.get(name)
        if template is None:
            template = self._text[name] = self.env.get_template(f"email/{name}.txt")
        return template

    def styled_source(self, name: str) -> str:
        """The HTML template's source, flattened, compacted and styled (premailer: ~0.3 s)."""
        source = self._styled.get(name)
        if source is None:
            path = f"email/{name}.html"
            source = compact(flatten(path, self._source))
            if not self.inline_per_email:
                source = inline_template(path, source, self.inline_css, self.style_block)
            self._styled[name] = source
        return source

    def styled_sources(self) -> dict[str, str]:
        """Every template source styled so far, for `Renderer(..., styled=...)`."""
        return dict(self._styled)

    def prepare(self) -> None:
        """Compile (and style) the digest templates now rather than for the first digest."""
        for name in ("digest", "welcome"):
            self.html_template(name)
            self.text_template(name)

    def _render(self, name: str, context: dict[str, Any]) -> _Output:
        text_template = self.text_template(name)
        if self.cards_once:
            html, html_parts = self._in_pieces(self.html_template(name), context)
            text, text_parts = self._in_pieces(text_template, context)
            return _Output(html, text, html_parts, text_parts)
        html = self.html_template(name).render(context)
        if self.inline_per_email:
            html = style_email(html, self.inline_css, self.style_block)
        return _Output(html, text_template.render(context))

    def _in_pieces(self, template: jinja2.Template, context: dict[str, Any]) -> tuple[str, Parts]:
        """`template.render(context)` with its cards from the card cache, and the output in
        pieces: the cached card text as it is, the reader's text between it joined."""
        ctx = template.new_context(context)
        self.cards.install(ctx)
        try:
            pieces = list(template.root_render_func(ctx))
        except Exception:
            self.env.handle_exception()
        return joined(pieces)

    # -- subjects ------------------------------------------------------------------------
    def _check_subject_template(self) -> None:
        try:
            self.cfg.email.subject_template.format(
                date=date(2026, 1, 1), top_title="t", count=1, name="n"
            )
        except (KeyError, IndexError, ValueError, AttributeError) as exc:
            raise ConfigError(
                f"email.subject_template {self.cfg.email.subject_template!r} cannot be filled "
                f"({exc!r}): use the fields {SUBJECT_FIELDS}, e.g. "
                '"Papers for {date:%a %d %b}: {top_title}"'
            ) from None

    def digest_subject(self, digest: Digest) -> str:
        subject = self.cfg.email.subject_template.format(
            date=digest.date,
            top_title=shorten(top_title(digest), 90),
            count=len(digest.picks),
            name=one_line(digest.subscriber.name),
        )
        return one_line(subject, 200)

    # -- contexts ------------------------------------------------------------------------
    def _common_site(self) -> dict[str, str]:
        """The variables that are the same in every e-mail (the card cache may use them)."""
        site = self.cfg.site
        return {
            "site_name": one_line(site.name),
            "site_url": site.base_url.rstrip("/") + "/",
            "operator": one_line(site.operator_name or site.name),
            "postal_address": one_line(site.postal_address),
        }

    def _common(self, subscriber: Subscriber, title: str, pre: str) -> dict[str, Any]:
        return {
            **self.cards.shared_vars,
            "subscriber_email": subscriber.email,
            "subscriber_name": one_line(subscriber.name),
            "title": title,
            "preheader": pre,
        }

    def _digest_context(
        self, digest: Digest, picks: Sequence[Pick], trending: Sequence[Pick], excerpt: int
    ) -> dict[str, Any]:
        cfg, sub = self.cfg, digest.subscriber
        ordered = trending_first(list(picks))
        cards = [card(cfg, sub, n, p, excerpt) for n, p in enumerate(ordered, 1)]
        hot: list[CardView] = [
            card(cfg, sub, n, p, 0, votes=False) for n, p in enumerate(trending, len(cards) + 1)
        ]
        context = self._common(
            digest.subscriber,
            f"{one_line(cfg.site.name)} · {long_date(digest.date)}",
            preheader(digest, len(cards)),
        )
        context.update(
            date_long=long_date(digest.date),
            interests=interests_line(digest.interests),
            picks=cards,
            sections=sections(cards, bool(digest.interests)),
            trending=hot,
            empty_reason=one_line(digest.empty_reason),
            dropped=0,
            manage_url=links.manage_url(cfg, sub),
            unsubscribe_url=links.unsubscribe_url(cfg, sub),
            preview_url=links.preview_url(cfg, sub, digest.date),
        )
        return context

    # -- messages ------------------------------------------------------------------------
    def digest(self, digest: Digest) -> RenderedEmail:
        """The daily digest, under the HTML size guard."""
        return self._digest("digest", digest, self.digest_subject(digest))

    def for_digest(self, digest: Digest, *, first: bool) -> RenderedEmail:
        """The template a digest gets: a subscriber's first digest is the welcome digest."""
        return self.welcome(digest) if first else self.digest(digest)

    def welcome(self, digest: Digest) -> RenderedEmail:
        """The first digest after confirming, with a short welcome on top."""
        subject = one_line(f"Welcome to {self.cfg.site.name}: {top_title(digest)}", 200)
        return self._digest("welcome", digest, subject)

    def _digest(self, name: str, digest: Digest, subject: str) -> RenderedEmail:
        excerpt = self.cfg.digest.excerpt_chars
        picks, trending = list(digest.picks), list(digest.trending)
        context = self._digest_context(digest, picks, trending, excerpt)
        out = self._render(name, context)
        if self._fits(out.html):
            return self._email(subject, out, context)
        for shorter in (excerpt * 2 // 3, excerpt // 2, excerpt // 3, min(excerpt, 120)):
            context = self._digest_context(digest, picks, trending, shorter)
            out = self._render(name, context)
            if self._fits(out.html):
                log.warning(
                    "digest for subscriber %s: excerpts shortened to %d characters to keep the "
                    "HTML under %d bytes",
                    digest.subscriber.id,
                    shorter,
                    self.max_html_bytes,
                )
                return self._email(subject, out, context)
        return self._drop_to_fit(name, digest, subject, min(excerpt, 120))

    @staticmethod
    def _email(
        subject: str, out: _Output, context: dict[str, Any], nothing_fits: bool = False
    ) -> RenderedEmail:
        return RenderedEmail(
            subject,
            out.html,
            out.text,
            context["preheader"],
            context["dropped"],
            nothing_fits,
            out.html_parts,
            out.text_parts,
        )

    def _drop_to_fit(self, name: str, digest: Digest, subject: str, excerpt: int) -> RenderedEmail:
        """Keep the longest prefix of picks-then-trending whose HTML fits (binary search)."""
        items = [*digest.picks, *digest.trending]
        n_picks = len(digest.picks)

        def attempt(keep: int) -> tuple[dict[str, Any], _Output]:
            picks, trending = items[: min(keep, n_picks)], items[n_picks:keep]
            context = self._digest_context(digest, picks, trending, excerpt)
            context["dropped"] = len(items) - keep
            return context, self._render(name, context)

        low, high = 0, len(items) - 1  # `len(items)` is known not to fit
        best = attempt(0)
        while low <= high:
            mid = (low + high) // 2
            tried = attempt(mid)
            if self._fits(tried[1].html):
                best, low = tried, mid + 1
            else:
                high = mid - 1
        context, out = best
        log.warning(
            "digest for subscriber %s: dropped %d of %d item(s) to keep the HTML under %d bytes",
            digest.subscriber.id,
            context["dropped"],
            len(items),
            self.max_html_bytes,
        )
        nothing_fits = bool(digest.picks) and not context["picks"]
        if nothing_fits:
            log.warning(
                "digest for subscriber %s: not one of %d pick(s) fits under %d bytes",
                digest.subscriber.id,
                n_picks,
                self.max_html_bytes,
            )
        return self._email(subject, out, context, nothing_fits)

    def _fits(self, html: str) -> bool:
        return len(html.encode("utf-8")) <= self.max_html_bytes

    def confirmation(self, subscriber: Subscriber, confirm_url: str) -> RenderedEmail:
        """The double-opt-in e-mail with the confirm link."""
        site = one_line(self.cfg.site.name)
        pre = f"One click to start getting papers picked for you by {site}."
        context = self._common(subscriber, f"Confirm your subscription to {site}", pre)
        context.update(confirm_url=confirm_url)
        out = self._render("confirm", context)
        return RenderedEmail(f"Confirm your subscription to {site}", out.html, out.text, pre)

    def unsubscribed(self, subscriber: Subscriber, resubscribe_url: str) -> RenderedEmail:
        """The notice that an address is unsubscribed, with a way back."""
        site = one_line(self.cfg.site.name)
        pre = f"You will get no more e-mails from {site}."
        context = self._common(subscriber, f"You are unsubscribed from {site}", pre)
        context.update(resubscribe_url=resubscribe_url)
        out = self._render("unsubscribed", context)
        return RenderedEmail(f"You are unsubscribed from {site}", out.html, out.text, pre)
