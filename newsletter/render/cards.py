"""Each paper's card rendered once per process, not once per reader.

Almost all of a digest is the same for every reader who gets a paper: its title, authors,
excerpt, links and counts. A template marks that part as a block: `card` (looping over `c`,
the picks) and `trend` (looping over `t`, the trending list). Inside `card`, the parts that
differ per reader are nested blocks (`card_reason`, `card_votes`: the reason line and the
signed feedback links). `CardCache` renders each `card`/`trend` block once per paper, number
and excerpt length, with the template's own compiled block function (so with the same
autoescaping as a full render), keeps the text around the nested blocks, and for each reader
renders only the nested blocks and splices them in. The result is the string a full render
gives, byte for byte (`tests/test_render_cards.py` compares the two).

Where the cached text is cut, our own block stand-ins write a marker holding a random value
drawn once per process, and the cut must give exactly one piece more than stand-ins were
called: feed text cannot forge a cut (it would have to know the value, and even then the count
would not match and the card is simply rendered per reader). No reader's text is ever put
into the cached text by substitution: reader parts are rendered by Jinja where they stand.

The rule that makes it exact is enforced, not assumed: while a block is cached, `c` gives the
paper's fields and `c.number` only; reading a reader's field (`c.reason`, `c.like_url`,
`c.dislike_url`) or any variable of one reader's digest outside a nested block raises, and the
template is then rendered whole for every reader (with a warning naming the block).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jinja2
from jinja2.runtime import Context

from newsletter.models import SharedText
from newsletter.render.views import CardView, PaperView

log = logging.getLogger(__name__)

CACHED_BLOCKS = {"card": "c", "trend": "t"}  # block name -> the loop variable it shows
READER_FIELDS = frozenset({"reason", "like_url", "dislike_url"})
MAX_ENTRIES = 16_384  # cached cards per renderer; the cache starts over when full

BlockFunc = Callable[[Context], Iterator[str]]
Pieces = tuple[tuple[SharedText, ...], tuple[str, ...]]  # text around, nested block names
Parts = tuple[str, ...]


class ReaderFieldError(Exception):
    """A cached block read a field that differs per reader."""


class _PaperOnly:
    """A card as a cached block sees it: the paper's fields and its number."""

    __slots__ = ("_card",)

    def __init__(self, card: CardView) -> None:
        self._card = card

    def __getattr__(self, name: str) -> object:
        if name in READER_FIELDS:
            raise ReaderFieldError(f"c.{name}")
        return getattr(self._card, name)


class CardCache:
    """Pre-rendered card text per (block, paper, number), for one renderer."""

    def __init__(self, shared_vars: Mapping[str, Any]) -> None:
        """`shared_vars`: the variables that are the same in every digest (the site's name,
        URL and address), which a cached block may read."""
        self.shared_vars = dict(shared_vars)
        self.marker = f"\ue000{secrets.token_hex(16)}\ue001"
        self._pieces: dict[tuple[object, ...], tuple[PaperView, Pieces | None]] = {}
        self._broken: set[BlockFunc] = set()  # blocks rendered whole for every reader

    def install(self, context: Context) -> None:
        """Make `context` (a whole digest's, before rendering) take its cards from the cache."""
        for name, var in CACHED_BLOCKS.items():
            context.blocks.setdefault(name, []).insert(0, self._stand_in(name, var))

    def _stand_in(self, name: str, var: str) -> BlockFunc:
        def block(context: Context) -> Iterator[str]:
            own = context.blocks[name][1]  # the template's block (ours is in front of it)
            view = context.resolve_or_missing(var)
            pieces = self._lookup(context, name, own, view) if type(view) is CardView else None
            if pieces is None:
                yield from own(context)
                return
            texts, nested = pieces
            yield texts[0]
            for inner, text in zip(nested, texts[1:], strict=True):
                yield "".join(context.blocks[inner][0](context))  # the reader's part
                yield text

        return block

    def _lookup(self, context: Context, name: str, own: BlockFunc, view: CardView) -> Pieces | None:
        if own in self._broken:
            return None
        # by identity: a paper's view is one object all day (`views.paper_view` is cached), and
        # the entry holds it, so its id cannot pass to another object while the entry lives
        key = (own, id(view.paper), view.number, view.trending)
        entry = self._pieces.get(key)
        if entry is not None and entry[0] is view.paper:
            return entry[1]
        if len(self._pieces) >= MAX_ENTRIES:
            self._pieces.clear()
        pieces = self._fill(context, name, own, view)
        if own not in self._broken:
            self._pieces[key] = (view.paper, pieces)
        return pieces

    def _fill(self, context: Context, name: str, own: BlockFunc, view: CardView) -> Pieces | None:
        """Render `own` for the paper alone, nested blocks replaced by the marker."""
        called: list[str] = []

        def stand_in(inner: str) -> BlockFunc:
            def nested(_context: Context) -> Iterator[str]:
                called.append(inner)
                yield self.marker

            return nested

        var = CACHED_BLOCKS[name]
        alone = Context(
            context.environment,
            {**context.environment.globals, **self.shared_vars, var: _PaperOnly(view)},
            context.name,
            {},
        )
        alone.blocks = {inner: [stand_in(inner)] for inner in context.blocks if inner != name}
        try:
            text = "".join(own(alone))
        except (ReaderFieldError, jinja2.UndefinedError) as exc:
            log.warning(
                "e-mail template %s: block %r uses %s, which differs per reader, outside a "
                "nested block; its cards are rendered whole for every reader (slower)",
                context.name,
                name,
                exc,
            )
            self._broken.add(own)
            return None
        texts = text.split(self.marker)
        if len(texts) != len(called) + 1:  # the marker in feed text: render this card whole
            return None
        return tuple(SharedText(t) for t in texts), tuple(called)


def joined(pieces: list[str]) -> tuple[str, Parts]:
    """A render's output whole, and in parts: each cached card text (`SharedText`) on its own,
    the reader's text between them joined into one part."""
    parts: list[str] = []
    run: list[str] = []
    for piece in pieces:
        if type(piece) is SharedText:
            if run:
                parts.append("".join(run))
                run = []
            if piece:
                parts.append(piece)
        else:
            run.append(piece)
    if run:
        parts.append("".join(run))
    return "".join(parts), tuple(parts)
