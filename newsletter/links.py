"""Absolute URLs for the links that act, built from the site base URL and signed tokens.

The web app's routes (`newsletter/web/`) are the other side of these URLs. Each takes the
subscriber record, not just its id: the token carries the row's nonce too (see tokens.py).
"""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import quote

from newsletter.config import Config
from newsletter.models import Subscriber
from newsletter.tokens import feedback_pair, make_token


def _url(cfg: Config, path: str) -> str:
    return cfg.site.base_url.rstrip("/") + path


def _token(cfg: Config, purpose: str, subscriber: Subscriber, **extra: Any) -> str:
    return make_token(cfg.require_secret_key(), purpose, subscriber.id, subscriber.nonce, **extra)


def confirm_url(cfg: Config, subscriber: Subscriber, request_id: int | None = None) -> str:
    """The opt-in link; `request_id` names the sign-up request whose preferences it applies."""
    extra = {} if request_id is None else {"r": request_id}
    return _url(cfg, "/confirm/" + _token(cfg, "confirm", subscriber, **extra))


def unsubscribe_url(cfg: Config, subscriber: Subscriber) -> str:
    return _url(cfg, "/unsubscribe/" + _token(cfg, "unsubscribe", subscriber))


def manage_url(cfg: Config, subscriber: Subscriber) -> str:
    return _url(cfg, "/manage/" + _token(cfg, "manage", subscriber))


def preview_url(cfg: Config, subscriber: Subscriber, day: date | None = None) -> str:
    """The digest in a browser: with `day`, the digest as it was sent on that date (the
    e-mail's "View in browser"); without, the digest due now."""
    extra = {} if day is None else {"d": day.isoformat()}
    return _url(cfg, "/preview/" + _token(cfg, "preview", subscriber, **extra))


def feedback_url(cfg: Config, subscriber: Subscriber, paper_id: str, vote: int) -> str:
    return _url(cfg, "/feedback/" + _token(cfg, "feedback", subscriber, p=paper_id, v=vote))


def feedback_urls(cfg: Config, subscriber: Subscriber, paper_id: str) -> tuple[str, str]:
    """(`feedback_url(..., 1)`, `feedback_url(..., -1)`): the 👍 and 👎 links of one paper,
    signed together (a digest has two per card)."""
    up, down = feedback_pair(cfg.require_secret_key(), subscriber.id, subscriber.nonce, paper_id)
    base = _url(cfg, "/feedback/")
    return base + up, base + down


def unsubscribe_mailto(cfg: Config, subscriber: Subscriber) -> str:
    """mailto: for List-Unsubscribe; empty when no unsubscribe mailbox is configured."""
    if not cfg.email.unsubscribe_mailto:
        return ""
    token = _token(cfg, "unsubscribe", subscriber)
    return f"mailto:{cfg.email.unsubscribe_mailto}?subject={quote('unsubscribe ' + token)}"
