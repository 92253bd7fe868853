"""Validate and normalise subscriber e-mail addresses (no DNS lookups)."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from newsletter.errors import InvalidAddressError


def normalize_address(raw: str) -> str:
    """Return the normalised address, or raise InvalidAddressError saying what is wrong."""
    text = raw.strip()
    if not text:
        raise InvalidAddressError("the e-mail address is empty")
    if any(c in text for c in "\r\n\t"):
        raise InvalidAddressError("the e-mail address contains a line break or tab")
    if len(text) > 254:
        raise InvalidAddressError("the e-mail address is longer than 254 characters")
    try:
        info = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidAddressError(f"{text!r} is not a valid e-mail address: {exc}") from None
    return str(info.normalized)
