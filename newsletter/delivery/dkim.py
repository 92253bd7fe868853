"""DKIM signing of the serialized bytes (dkimpy, relaxed/simple), the key read once."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from newsletter.config import Config
from newsletter.errors import ConfigError

# Headers the DKIM signature covers (RFC 8058 asks for both List-Unsubscribe headers).
DKIM_HEADERS = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"reply-to",
    b"list-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"mime-version",
    b"content-type",
)


class DKIMSigner:
    """Signs serialized messages with dkimpy (relaxed/simple), the key read once."""

    def __init__(self, selector: str, domain: str, private_key: bytes) -> None:
        self.selector = selector.encode("ascii")
        self.domain = domain.encode("ascii")
        self.private_key = private_key

    @classmethod
    def from_config(cls, cfg: Config) -> DKIMSigner | None:
        e = cfg.email
        wanted = [e.dkim_selector, e.dkim_domain, e.dkim_key_file]
        if not any(wanted):
            return None
        if not all(wanted):
            raise ConfigError(
                "DKIM needs all three of email.dkim_selector, email.dkim_domain and "
                "email.dkim_key_file (or none of them, to send unsigned)"
            )
        path = cfg.path(e.dkim_key_file)
        try:
            key = Path(path).read_bytes()
        except OSError as exc:
            raise ConfigError(f"email.dkim_key_file: cannot read {path}: {exc.strerror}") from None
        if b"PRIVATE KEY" not in key:
            raise ConfigError(f"email.dkim_key_file: {path} is not a PEM private key")
        return cls(e.dkim_selector, e.dkim_domain, key)

    def sign(self, raw: bytes, headers: Sequence[bytes] = DKIM_HEADERS) -> bytes:
        import dkim

        present = {line.split(b":", 1)[0].strip().lower() for line in _header_lines(raw)}
        include = [h for h in headers if h in present]
        try:
            signature = dkim.sign(
                raw,
                self.selector,
                self.domain,
                self.private_key,
                include_headers=include,
                linesep=b"\r\n",
            )
        except dkim.DKIMException as exc:
            raise ConfigError(f"DKIM signing failed (check email.dkim_key_file): {exc}") from None
        return bytes(signature) + raw


def _header_lines(raw: bytes) -> list[bytes]:
    head = raw.split(b"\r\n\r\n", 1)[0]
    return [line for line in head.split(b"\r\n") if line and not line[:1].isspace()]
