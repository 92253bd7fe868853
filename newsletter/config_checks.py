"""The checks a parsed config must pass: each failure is one `ConfigError` naming the key and
the fix. `config.parse_config` runs `validate` on every config it builds."""

from __future__ import annotations

import dataclasses
import zoneinfo
from typing import TYPE_CHECKING

from newsletter.errors import ConfigError
from newsletter.models import ARXIV_CATEGORY

if TYPE_CHECKING:
    from newsletter.config import (
        Config,
        DeliveryConfig,
        SMTPConfig,
        SourcesConfig,
        WebConfig,
    )


def _validate_sources(s: SourcesConfig) -> None:
    """[sources] checks: URLs, categories, retries, arXiv's 3-second rule."""
    for key in ("arxiv_rss_url", "arxiv_api_url", "huggingface_url"):
        if not getattr(s, key).startswith(("http://", "https://")):
            raise ConfigError(f"sources.{key} must start with http:// or https://")
    if s.arxiv_rss and not s.arxiv_categories:
        raise ConfigError('sources.arxiv_categories is empty: list some, e.g. ["cs.LG", "cs.CL"]')
    for cat in s.arxiv_categories:
        if not ARXIV_CATEGORY.fullmatch(cat):
            raise ConfigError(
                f"sources.arxiv_categories has {cat!r}, which is not an arXiv category "
                '(e.g. "cs.LG", "stat.ML", "hep-th")'
            )
    if s.timeout_seconds <= 0:
        raise ConfigError("sources.timeout_seconds must be more than 0")
    if not 0 <= s.max_retries <= 10:
        raise ConfigError("sources.max_retries must be between 0 and 10")
    if "export.arxiv.org" in s.arxiv_api_url and s.arxiv_api_delay_seconds < 3:
        raise ConfigError(
            "sources.arxiv_api_delay_seconds must be at least 3 for export.arxiv.org "
            "(arXiv's terms of use ask for one request every 3 seconds)"
        )
    if s.arxiv_api_delay_seconds < 0:
        raise ConfigError("sources.arxiv_api_delay_seconds cannot be negative")


def _validate_delivery(d: DeliveryConfig) -> None:
    """[delivery] checks: the method, the building processes."""
    if d.method != "smtp" and not (
        d.method.startswith("maildir:") and len(d.method) > len("maildir:")
    ):
        raise ConfigError(
            f'delivery.method is {d.method!r}: use "smtp" or "maildir:PATH" (e.g. maildir:outbox)'
        )
    if d.build_processes < -1:
        raise ConfigError(
            "delivery.build_processes must be -1 (one per CPU), 0 (build in the sending "
            "process) or a number of processes"
        )
    if d.build_from < 0:
        raise ConfigError("delivery.build_from cannot be negative")


def validate(cfg: Config) -> None:
    """Raise ConfigError naming the key and the fix for the first setting that cannot work."""
    _validate_sources(cfg.sources)
    if cfg.smtp.security not in {"starttls", "ssl", "none"}:
        raise ConfigError(
            f'smtp.security is {cfg.smtp.security!r}: use "starttls", "ssl" or "none"'
        )
    _validate_delivery(cfg.delivery)
    if cfg.digest.category_mode not in {"boost", "filter"}:
        raise ConfigError('digest.category_mode must be "boost" or "filter"')
    if not 0 <= cfg.digest.hour <= 23:
        raise ConfigError("digest.hour must be between 0 and 23")
    if not 1 <= cfg.digest.size <= 50:
        raise ConfigError("digest.size must be between 1 and 50")
    if not 0 <= cfg.digest.trending_weight <= 100:  # also refuses nan
        raise ConfigError(
            f"digest.trending_weight is {cfg.digest.trending_weight}: it must be between 0 and 100 "
            "(0: relevance alone; 0.25 by default; a few units lets trending lead)"
        )
    if cfg.digest.traction_threshold < 0:
        raise ConfigError("digest.traction_threshold cannot be negative (0 turns it off)")
    for key, tz in (
        ("digest.timezone", cfg.digest.timezone),
        ("schedule.fetch_timezone", cfg.schedule.fetch_timezone),
    ):
        try:
            zoneinfo.ZoneInfo(tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f'{key} is {tz!r}: use an IANA name such as "Europe/Berlin"'
            ) from None
    if not cfg.site.base_url.startswith(("http://", "https://")):
        raise ConfigError(
            "site.base_url must start with http:// or https:// (links in e-mails use it)"
        )
    if cfg.smtp.connections < 1:
        raise ConfigError("smtp.connections must be at least 1")
    _validate_smtp(cfg.smtp)
    _validate_web(cfg.web)
    _validate_addresses(cfg)


def _validate_addresses(cfg: Config) -> None:
    """The addresses every message carries must be writable in its headers and envelope:
    otherwise every digest would be refused at build time, day after day."""
    from newsletter.delivery.mime import RefusedMessage, header_address  # mime imports config

    for key, address in (
        ("email.from_address", cfg.email.from_address),
        ("email.reply_to", cfg.email.reply_to),
        ("email.unsubscribe_mailto", cfg.email.unsubscribe_mailto),
    ):
        if not address and key != "email.from_address":
            continue
        try:
            header_address(address)
        except RefusedMessage as exc:
            raise ConfigError(f"{key} cannot be used: {exc}") from None
    if not cfg.email.unsubscribe_mailto.isascii():  # it goes into a mailto: URL as written
        raise ConfigError(
            "email.unsubscribe_mailto cannot be used: write its domain in ASCII (xn--…)"
        )


def _validate_web(w: WebConfig) -> None:
    """[web] checks: every sign-up limit must let something through."""
    for key, value in dataclasses.asdict(w).items():
        if "_per_" in key and value < 1:
            raise ConfigError(f"web.{key} must be at least 1 (it is {value})")


def _validate_smtp(s: SMTPConfig) -> None:
    """[smtp] checks: limits that would make the send loop misbehave."""
    if not 1 <= s.port <= 65535:
        raise ConfigError(f"smtp.port is {s.port}: use 587 (starttls), 465 (ssl) or 25")
    if s.timeout_seconds <= 0:
        raise ConfigError("smtp.timeout_seconds must be more than 0")
    if s.rate_per_second < 0:
        raise ConfigError("smtp.rate_per_second cannot be negative (0 means no limit)")
    if s.max_attempts < 1:
        raise ConfigError("smtp.max_attempts must be at least 1")
    if s.bounce_after < 1:
        raise ConfigError("smtp.bounce_after must be at least 1")
    if s.retry_backoff_seconds < 0:
        raise ConfigError("smtp.retry_backoff_seconds cannot be negative")
