"""Signed, expiring tokens for the links that act: confirm, unsubscribe, manage, feedback, preview.

A token binds a purpose (the itsdangerous salt), a subscriber and optional extra data, and
carries its signing time so each purpose has its own lifetime. Unsubscribe links sit in old
e-mails, so they live for years; confirm links live days.

A token also names the subscriber's nonce (a random value per row): a link minted for a row
that was deleted never acts on a later row, even one with the same id. Links sent before
nonces existed carry none; the web app accepts those only for rows that predate nonces.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode

from newsletter.errors import ConfigError, NewsletterError

DAY = 86_400
MAX_AGE = {
    "confirm": 7 * DAY,
    "unsubscribe": 5 * 365 * DAY,
    "manage": 365 * DAY,
    "feedback": 180 * DAY,
    "preview": 30 * DAY,
    "feed": 5 * 365 * DAY,  # a feed reader keeps polling the URL it was given
}


class TokenError(NewsletterError):
    """A token that is tampered with, for another purpose, or expired."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


@dataclass(frozen=True)
class TokenData:
    purpose: str
    subscriber_id: int
    extra: dict[str, Any]
    nonce: str = ""  # "" in links minted before subscribers had nonces


class _Serializer(URLSafeTimedSerializer):
    """Never zlib-compresses: tokens are tiny. Reading still accepts compressed payloads, so
    links already sent keep working. `make_token` writes exactly what this would."""

    def dump_payload(self, obj: Any) -> bytes:
        return base64_encode(self.serializer.dumps(obj, **self.serializer_kwargs).encode())


@functools.lru_cache(maxsize=64)
def _serializer(secret: str, purpose: str) -> URLSafeTimedSerializer:
    if purpose not in MAX_AGE:
        raise ValueError(f"unknown token purpose {purpose!r}")
    return _Serializer(secret, salt=f"newsletter.{purpose}")


# The signing half of `_Serializer.dumps`, byte for byte, without its per-call overhead: a
# digest signs ~25 links, and itsdangerous derives the key again and builds a new HMAC for
# each one. Here the key is derived once per (secret, purpose) and its HMAC states are
# copied per token; the payload JSON, the timestamp and the HMAC-SHA1 signature are the same
# (itsdangerous' defaults: compact JSON, "django-concat" key derivation, "." separators), so
# `read_token` verifies these tokens as before and tests compare the two outputs.
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_PLAIN = re.compile(r"[\x20-\x21\x23-\x5b\x5d-\x7e]*").fullmatch  # JSON writes these as is


_KEYS = frozenset({"s", "n", "p", "v", "d", "r"})  # the keys our tokens use, all plain


def _compact_json(payload: dict[str, Any]) -> str:
    """`_JSON(payload)`, written directly for the usual tokens: int and plain-string values."""
    parts = []
    for key, value in payload.items():
        if key not in _KEYS and not _PLAIN(key):
            return _JSON(payload)
        if type(value) is int:
            parts.append(f'"{key}":{value}')
        elif type(value) is str and _PLAIN(value):
            parts.append(f'"{key}":"{value}"')
        else:
            return _JSON(payload)
    return "{" + ",".join(parts) + "}"


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64(data: bytes) -> bytes:
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=")


_IPAD = bytes.maketrans(bytes(range(256)), bytes(x ^ 0x36 for x in range(256)))
_OPAD = bytes.maketrans(bytes(range(256)), bytes(x ^ 0x5C for x in range(256)))


@functools.lru_cache(maxsize=64)
def _keyed(secret: str, purpose: str) -> tuple[Any, Any]:
    """HMAC-SHA1's inner and outer hash states for the purpose's derived key (RFC 2104: the
    key padded to the 64-byte block, XOR-ed with ipad and opad), copied for each token: one
    `hmac.digest` call costs about three times as much."""
    if purpose not in MAX_AGE:
        raise ValueError(f"unknown token purpose {purpose!r}")
    salt = f"newsletter.{purpose}".encode()
    key = hashlib.sha1(salt + b"signer" + secret.encode()).digest().ljust(64, b"\0")
    return hashlib.sha1(key.translate(_IPAD)), hashlib.sha1(key.translate(_OPAD))


# itsdangerous' own clock (int(time.time())), read where its signers read it
_CLOCK = TimestampSigner("only its clock is used")


@functools.lru_cache(maxsize=4)
def _stamp(seconds: int) -> bytes:
    return _b64(seconds.to_bytes(8, "big").lstrip(b"\x00"))


def make_token(secret: str, purpose: str, subscriber_id: int, nonce: str, **extra: Any) -> str:
    """Sign a token for one purpose and subscriber (its id and its row's nonce)."""
    payload = {"s": subscriber_id, **extra}
    if nonce:
        payload["n"] = nonce
    value = _b64(_compact_json(payload).encode()) + b"." + _stamp(_CLOCK.get_timestamp())
    return _signed(_keyed(secret, purpose), value)


def feedback_pair(secret: str, subscriber_id: int, nonce: str, paper_id: str) -> tuple[str, str]:
    """The 👍 and 👎 tokens of one paper for one reader: `make_token(secret, "feedback",
    subscriber_id, nonce, p=paper_id, v=1)` and `v=-1`, byte for byte. A digest carries two
    per card; here the key, the timestamp and the payload's JSON are made once per pair."""
    if type(subscriber_id) is not int or not _PLAIN(paper_id) or not _PLAIN(nonce):
        return (
            make_token(secret, "feedback", subscriber_id, nonce, p=paper_id, v=1),
            make_token(secret, "feedback", subscriber_id, nonce, p=paper_id, v=-1),
        )
    head = f'{{"s":{subscriber_id},"p":"{paper_id}","v":'
    tail = f',"n":"{nonce}"}}' if nonce else "}"
    keyed = _keyed(secret, "feedback")
    stamp = b"." + _stamp(_CLOCK.get_timestamp())
    up, down = (_signed(keyed, _b64(f"{head}{v}{tail}".encode()) + stamp) for v in (1, -1))
    return up, down


def _signed(keyed: tuple[Any, Any], value: bytes) -> str:
    """`value` (payload "." timestamp) "." its HMAC-SHA1 under the purpose's key."""
    inner_state, outer_state = keyed
    inner = inner_state.copy()
    inner.update(value)
    outer = outer_state.copy()
    outer.update(inner.digest())
    return (value + b"." + _b64(outer.digest())).decode("ascii")


def read_token(secret: str, purpose: str, token: str, max_age: int | None = None) -> TokenData:
    """Verify a token; raise TokenError (expired or invalid) with a message for the reader."""
    age = MAX_AGE[purpose] if max_age is None else max_age
    try:
        data = _serializer(secret, purpose).loads(token, max_age=age)
    except SignatureExpired:
        raise TokenError("This link has expired.", expired=True) from None
    except BadSignature:
        raise TokenError("This link is not valid: it may have been cut or changed.") from None
    if not isinstance(data, dict) or not isinstance(data.get("s"), int):
        raise TokenError("This link is not valid.")
    if not isinstance(data.get("n", ""), str):
        raise TokenError("This link is not valid.")
    sid, nonce = data.pop("s"), data.pop("n", "")
    return TokenData(purpose=purpose, subscriber_id=sid, extra=data, nonce=nonce)


def signing_key(key_file: str, base_dir: Path | str, env: dict[str, str]) -> str:
    """The key links are signed with: from `key_file` (site.secret_key_file, relative to the
    config's folder) when set, so links stay valid whatever the shell exports; else from
    NEWSLETTER_SECRET_KEY. A ConfigError says why a key file cannot be used."""
    if not key_file:
        return env.get("NEWSLETTER_SECRET_KEY", "")
    path = Path(base_dir) / Path(key_file).expanduser()
    try:
        key = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"site.secret_key_file {path} cannot be read: {exc.strerror}") from None
    if len(key) < 16:
        raise ConfigError(f"site.secret_key_file {path} holds fewer than 16 characters")
    return key
