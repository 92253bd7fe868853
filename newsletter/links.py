"""Absolute URLs for the links that act, built from the site base URL and signed tokens.

The web app's routes (`newsletter/web/`) are the other side of these URLs.
"""

from __future__ import annotations

from urllib.parse import quote

from newsletter.config import Config
from newsletter.tokens import make_token


def _url(cfg: Config, path: str) -> str:
    return cfg.site.base_url.rstrip("/") + path


def confirm_url(cfg: Config, subscriber_id: int, request_id: int | None = None) -> str:
    """The opt-in link; `request_id` names the sign-up request whose preferences it applies."""
    extra = {} if request_id is None else {"r": request_id}
    token = make_token(cfg.require_secret_key(), "confirm", subscriber_id, **extra)
    return _url(cfg, "/confirm/" + token)


def unsubscribe_url(cfg: Config, subscriber_id: int) -> str:
    token = make_token(cfg.require_secret_key(), "unsubscribe", subscriber_id)
    return _url(cfg, "/unsubscribe/" + token)


def manage_url(cfg: Config, subscriber_id: int) -> str:
    return _url(cfg, "/manage/" + make_token(cfg.require_secret_key(), "manage", subscriber_id))


def preview_url(cfg: Config, subscriber_id: int) -> str:
    return _url(cfg, "/preview/" + make_token(cfg.require_secret_key(), "preview", subscriber_id))


def feedback_url(cfg: Config, subscriber_id: int, paper_id: str, vote: int) -> str:
    token = make_token(cfg.require_secret_key(), "feedback", subscriber_id, p=paper_id, v=vote)
    return _url(cfg, "/feedback/" + token)


def unsubscribe_mailto(cfg: Config, subscriber_id: int) -> str:
    """mailto: for List-Unsubscribe; empty when no unsubscribe mailbox is configured."""
    if not cfg.email.unsubscribe_mailto:
        return ""
    token = make_token(cfg.require_secret_key(), "unsubscribe", subscriber_id)
    return f"mailto:{cfg.email.unsubscribe_mailto}?subject={quote('unsubscribe ' + token)}"
