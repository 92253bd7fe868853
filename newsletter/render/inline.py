"""Style an e-mail template once, on the template's own markup, instead of once per e-mail.

An e-mail gets two stylesheets (see docs/email-markup.md): the few properties a client without
`<style>` support needs are inlined as style attributes (`email-inline.css`), and the rest goes
once into a minified `<style>` block in `<head>` (`email.css`), for the clients that read one.
The template's indentation is dropped first (`compact`): some 2 KB of every digest.

premailer parses HTML, so Jinja syntax is first hidden from it: `{% ... %}` tags outside an
HTML tag become `<!--JB00001J-->` comments (the parser keeps comments where they are, even
between table rows) and everything else becomes an inert `JV00001J` word. After premailer has
inlined the stylesheet, the placeholders are put back, and the result is compiled once.

This is equivalent to running premailer on every rendered e-mail as long as the CSS selectors
depend only on the markup in the template (tags, static classes): no `:nth-child`/sibling
selectors and no class names computed by Jinja. `tests/test_render_inline.py` compares both
DOMs. Template inheritance (`extends`, `block`, `super()`) and static `include`s are resolved
here first, because premailer has to see the whole document at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from newsletter.errors import ConfigError

_EXTENDS = re.compile(r"\A\s*\{%-?\s*extends\s+[\"']([^\"']+)[\"']\s*-?%\}")
_INCLUDE = re.compile(r"\{%-?\s*include\s+[\"']([^\"']+)[\"']\s*-?%\}")
_BLOCK_TAG = re.compile(r"\{%-?\s*(block\s+(\w+)|endblock(?:\s+\w+)?)\s*(?:scoped\s*)?-?%\}")
_SUPER = re.compile(r"\{\{-?\s*super\(\)\s*-?\}\}")
_COMMENT = re.compile(r"\{#.*?#\}", re.DOTALL)
_JINJA = re.compile(r"\{%.*?%\}|\{\{.*?\}\}", re.DOTALL)
_PLACEHOLDER = re.compile(r"<!--JB(\d{5})J-->|J[BV](\d{5})J")
_INDENT = re.compile(r"[ \t]*\n\s*")
_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_CSS_SPACE = re.compile(r"\s*([{};,>])\s*|(:)\s*|\s+")
_HEAD_END = re.compile(r"</head\s*>", re.IGNORECASE)

Loader = Callable[[str], str]


def compact(source: str) -> str:
    """An HTML template without its indentation and blank lines (every line break stays one, so
    text reads the same; e-mail templates have no `<pre>` whose spaces would matter)."""
    return _INDENT.sub("\n", source)


def minify_css(css: str) -> str:
    """The stylesheet without comments and optional white space (`and (` in a media query keeps
    its space: `and(` would be a function)."""

    def squeeze(m: re.Match[str]) -> str:
        return m.group(1) or m.group(2) or " "

    flat = _CSS_SPACE.sub(squeeze, _CSS_COMMENT.sub("", css)).strip()
    return flat.replace(";}", "}").replace(" !important", "!important")


def style_block(css: str) -> str:
    """`<style>` with the minified stylesheet, for `<head>`."""
    bad = re.search(r"</style|\{%", css, re.IGNORECASE)  # '100%}' is fine inside {% raw %}
    if bad:
        raise ConfigError(
            f"email.css must not contain {bad.group(0)!r}: it would end the <style> block or the "
            "{% raw %} it is compiled in"
        )
    return f"<style>{minify_css(css)}</style>"


def with_style_block(html: str, block: str) -> str:
    """The document with `block` at the end of its `<head>`."""
    found = _HEAD_END.search(html)
    if found is None:
        raise ConfigError("an e-mail template needs a <head> for its <style> block")
    return f"{html[: found.start()]}{block}{html[found.start() :]}"


def premailer_inline(html: str, css: str) -> str:
    """The one premailer call used everywhere (cached templates and the per-e-mail baseline)."""
    import premailer  # imported on first use: it costs ~0.2 s and most commands never inline

    return str(
        premailer.transform(
            html,
            css_text=css,
            allow_network=False,
            disable_validation=True,
            cssutils_logging_level="CRITICAL",
            strip_important=True,
        )
    )


def _blocks(source: str) -> list[tuple[str, int, int, int, int]]:
    """Top-level blocks: (name, tag_start, body_start, body_end, tag_end)."""
    found: list[tuple[str, int, int, int, int]] = []
    stack: list[tuple[str, int, int]] = []
    for m in _BLOCK_TAG.finditer(source):
        if m.group(2):
            stack.append((m.group(2), m.start(), m.end()))
        elif stack:
            name, start, body = stack.pop()
            if not stack:
                found.append((name, start, body, m.start(), m.end()))
    if stack:
        raise ConfigError(f"template block {stack[-1][0]!r} has no {{% endblock %}}")
    return found


def _all_blocks(source: str) -> dict[str, str]:
    """Every block (nested ones too) by name → its body."""
    out: dict[str, str] = {}
    for name, _, body_start, body_end, _ in _blocks(source):
        body = source[body_start:body_end]
        out[name] = body
        for inner_name, inner_body in _all_blocks(body).items():
            out.setdefault(inner_name, inner_body)
    return out


def _with_super(own: str, parent_body: str) -> str:
    """A child's block body with its `{{ super() }}` calls replaced by the parent's body."""
    return _SUPER.sub(lambda _m: parent_body, own)


def _fill(parent: str, child_blocks: dict[str, str]) -> str:
    """Replace the bodies of the parent's blocks by the child's, keeping the block tags."""
    out, pos = [], 0
    for name, _, body_start, body_end, _ in _blocks(parent):
        out.append(parent[pos:body_start])
        body = parent[body_start:body_end]
        if name in child_blocks:
            own = child_blocks[name]
            out.append(_with_super(own, body))
        else:
            out.append(_fill(body, child_blocks))
        pos = body_end
    out.append(parent[pos:])
    return "".join(out)


def flatten(name: str, load: Loader, _depth: int = 0) -> str:
    """One self-contained template source: extends, blocks and static includes resolved."""
    if _depth > 10:
        raise ConfigError(f"template {name}: extends/include nested more than 10 deep")
    source = _COMMENT.sub("", load(name))
    source = _INCLUDE.sub(lambda m: flatten(m.group(1), load, _depth + 1), source)
    parent = _EXTENDS.match(source)
    if parent is None:
        return source
    base = flatten(parent.group(1), load, _depth + 1)
    return _fill(base, _all_blocks(source[parent.end() :]))


def _inside_tag(source: str, pos: int) -> bool:
    return source.rfind("<", 0, pos) > source.rfind(">", 0, pos)


def mask(source: str) -> tuple[str, list[str]]:
    """Hide Jinja syntax from the HTML parser; returns the masked text and the originals."""
    originals: list[str] = []

    def swap(m: re.Match[str]) -> str:
        n = len(originals)
        originals.append(m.group(0))
        if m.group(0).startswith("{%") and not _inside_tag(source, m.start()):
            return f"<!--JB{n:05d}J-->"
        return f"J{'B' if m.group(0).startswith('{%') else 'V'}{n:05d}J"

    return _JINJA.sub(swap, source), originals


def unmask(html: str, originals: list[str], name: str) -> str:
    """Put the Jinja syntax back; every placeholder must come back exactly once."""
    seen: set[int] = set()

    def back(m: re.Match[str]) -> str:
        n = int(m.group(1) or m.group(2))
        seen.add(n)
        return originals[n]

    restored = _PLACEHOLDER.sub(back, html)
    missing = sorted(set(range(len(originals))) - seen)
    if missing:
        raise ConfigError(
            f"template {name}: premailer dropped the Jinja tag {originals[missing[0]]!r}; keep "
            "Jinja tags in text and whole attribute values (not in style= or between <table> "
            "and <tr> as text)"
        )
    return restored


def style_email(html: str, inline_css: str, block: str) -> str:
    """A rendered e-mail styled: `inline_css` inlined, then the `<style>` block added (the
    per-e-mail reference path that the cached templates are compared with)."""
    return with_style_block(premailer_inline(html, inline_css), block)


def inline_template(name: str, source: str, inline_css: str, block: str = "") -> str:
    """A flattened template source styled like `style_email` does, before it is filled in."""
    masked, originals = mask(source)
    styled = unmask(premailer_inline(masked, inline_css), originals, name)
    return with_style_block(styled, "{% raw %}" + block + "{% endraw %}") if block else styled
