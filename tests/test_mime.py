"""Message building: structure, headers, encodings, injection, line lengths and DKIM."""

from __future__ import annotations

import base64
import email
import email.policy
import re
import shutil
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from newsletter.delivery import mime
from newsletter.delivery.dkim import DKIMSigner
from newsletter.errors import DeliveryError
from newsletter.models import Subscriber, SubscriberStatus
from newsletter.render.renderer import RenderedEmail
from tests.conftest import make_config

DAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
EXTRA = '[email]\nunsubscribe_mailto = "unsubscribe@example.org"\nreply_to = "help@example.org"\n'


def _rendered(subject: str = "Papers for Mon 23 Nov: Attention", html: str = "", text: str = ""):
    html = html or "<html><body><p>Hello ✓ Über</p>" + "<td>cell</td>" * 2000 + "</body></html>"
    text = text or "Hello ✓ Über\n\nhttps://arxiv.org/abs/2611.00001\n"
    return RenderedEmail(subject=subject, html=html, text=text, preheader="pre", dropped=0)


def _same(a: bytes, b: bytes) -> bool:
    """Equal bytes, ignoring the signed unsubscribe token (it embeds the current second)."""
    token = re.compile(rb"/unsubscribe/[\w.-]+|unsubscribe%20[\w.-]+")
    return token.sub(b"TOKEN", a) == token.sub(b"TOKEN", b)


def _parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def _lines_ok(raw: bytes) -> None:
    """Every line ends in CRLF (no bare CR or LF) and is at most 998 octets."""
    assert raw.endswith(b"\r\n")
    assert raw.count(b"\n") == raw.count(b"\r\n")
    assert raw.count(b"\r") == raw.count(b"\r\n")
    longest = max(len(line) for line in raw.split(b"\r\n"))
    assert longest <= 998, longest


@pytest.fixture
def cfg(tmp_path: Path):
    return make_config(tmp_path, EXTRA)


def _sub(name: str = "Ann Lee", email_: str = "ann@example.org") -> Subscriber:
    return Subscriber(id=7, email=email_, name=name, status=SubscriberStatus.ACTIVE)


def _build(cfg, sub, rendered, signer=None):
    mid = mime.message_id_for(cfg, sub.id, DAY)
    msg = mime.build_message(cfg, sub, rendered, message_id=mid, digest_date=DAY, now=NOW)
    fast = mime.render_bytes(
        cfg, sub, rendered, message_id=mid, digest_date=DAY, now=NOW, signer=signer
    )
    return msg, fast


def test_structure_and_headers(cfg) -> None:
    msg, raw = _build(cfg, _sub(), _rendered())
    assert _same(raw, mime.to_bytes(msg))
    _lines_ok(raw)
    got = _parse(raw)
    assert got.get_content_type() == "multipart/alternative"
    parts = list(got.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    assert all(p["Content-Transfer-Encoding"] == "quoted-printable" for p in parts)
    assert "Hello ✓ Über" in parts[0].get_content()
    assert parts[1].get_content().count("<td>cell</td>") == 2000
    assert got["From"] == "Paper Digest <digest@example.org>"
    assert got["To"] == "Ann Lee <ann@example.org>"
    assert got["Reply-To"] == "help@example.org"
    assert got["Subject"] == "Papers for Mon 23 Nov: Attention"
    assert got["Date"] == "Mon, 23 Nov 2026 07:00:00 +0000"
    assert got["Message-ID"] == mime.message_id_for(cfg, 7, DAY)
    assert got["Message-ID"].startswith("<") and got["Message-ID"].endswith("@example.org>")
    assert got["List-Id"] == "Paper Digest <digest.example.org>"
    assert got["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https, mailto = (v.strip() for v in got["List-Unsubscribe"].split(","))
    assert https.startswith("<http://127.0.0.1:8000/unsubscribe/") and https.endswith(">")
    assert (
        mailto.startswith("<mailto:unsubscribe@example.org?subject=unsubscribe")
        and "=?" not in mailto
    )
    for name in ("From", "To", "Subject", "Date", "Message-ID", "List-Unsubscribe"):
        assert len(got.get_all(name)) == 1


def test_message_id_is_stable_per_subscriber_and_date(cfg) -> None:
    a = mime.message_id_for(cfg, 7, DAY)
    assert a == mime.message_id_for(cfg, 7, DAY)
    assert a != mime.message_id_for(cfg, 8, DAY)
    assert a != mime.message_id_for(cfg, 7, date(2026, 11, 24))
    assert a != mime.message_id_for(cfg, 7, DAY, variant=1)


def test_header_injection_through_name_subject_and_config_is_impossible(cfg) -> None:
    sub = _sub(name="Eve\r\nBcc: x@evil.test")
    rendered = _rendered(subject="Great\r\nBcc: y@evil.test\nX-Evil: 1")
    msg, raw = _build(cfg, sub, rendered)
    assert _same(raw, mime.to_bytes(msg))
    _lines_ok(raw)
    head = raw.split(b"\r\n\r\n", 1)[0]
    names = [
        line.split(b":", 1)[0].lower() for line in head.split(b"\r\n") if line[:1] not in b" \t"
    ]
    assert b"bcc" not in names and b"x-evil" not in names
    got = _parse(raw)
    assert got["Bcc"] is None and got["X-Evil"] is None
    assert got["To"].addresses[0].addr_spec == "ann@example.org"
    assert len(got["To"].addresses) == 1
    assert got["Subject"] == "Great Bcc: y@evil.test X-Evil: 1"


def test_text_posing_as_encoded_words_cannot_smuggle_headers(cfg) -> None:
    sub = _sub(name="=?utf-8?q?Eve=0D=0ABcc:_x@evil.test?=")
    rendered = _rendered(subject="=?utf-8?q?hi=0D=0ABcc:_y@evil.test?= more")
    msg, raw = _build(cfg, sub, rendered)
    assert _same(raw, mime.to_bytes(msg))
    got = _parse(raw)
    assert got["Bcc"] is None
    assert "\r" not in got["Subject"] and "\n" not in got["Subject"]
    assert got["Subject"].startswith("= ?utf-8?q?hi=0D=0ABcc")


@pytest.mark.parametrize(
    "address", ["ann@example.org\r\nBcc: x@evil.test", "a b@example.org", "noat", "ünï@example.org"]
)
def test_unusable_address_is_refused_with_a_reason(cfg, address: str) -> None:
    with pytest.raises(mime.RefusedMessage) as info:
        _build(cfg, _sub(email_=address), _rendered())
    assert isinstance(info.value, DeliveryError) and not info.value.temporary
    assert str(info.value)


def test_non_ascii_subject_and_name_are_rfc2047_encoded(cfg) -> None:
    subject = "Papers for Mon 23 Nov: Über große Sprachmodelle — " + "sehr lang " * 12
    msg, raw = _build(cfg, _sub(name="Zoë Ünal"), _rendered(subject=subject))
    assert _same(raw, mime.to_bytes(msg))
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    assert b"=?utf-8?" in head
    assert all(len(line) <= 78 for line in head.split(b"\r\n") if not line.startswith(b"List-"))
    got = _parse(raw)
    assert got["Subject"] == mime.clean_header_text(subject)
    assert got["To"].addresses[0].display_name == "Zoë Ünal"


def test_fast_serializer_matches_the_email_package_on_awkward_input(cfg) -> None:
    cases = [
        ('Dr. O\'Brien, "Jr."', "=?utf-8?q?looks_encoded?= title"),
        ("", "x" * 400),
        ("A" * 70, "Subject that is exactly long enough to need folding at seventy-eight"),
        ("Ann", "Papers for Tue 24 Nov: Neural Optimal Transport with General Cost Functionals"),
        ("Ann", "Papers for Tue 24 Nov: " + "word " * 60),
        ("Ann\tLee", "Tab\tand\u2028separator"),
    ]
    for name, subject in cases:
        msg, raw = _build(cfg, _sub(name=name), _rendered(subject=subject))
        assert _same(raw, mime.to_bytes(msg)), (name, subject)
        _lines_ok(raw)
        head = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        assert all(len(line) <= 78 for line in head if not line.startswith(b"List-"))
        got = _parse(raw)
        assert got["Subject"] == mime.clean_header_text(subject, mime.MAX_SUBJECT_CHARS)


def test_no_line_over_998_octets_whatever_the_html(cfg) -> None:
    one_line_html = (
        "<html><body>" + "<p style='color:#333'>abstract ✓</p>" * 3000 + "</body></html>"
    )
    trailing = "text with trailing spaces   \nand a bare\rcarriage return\n" * 50
    _, raw = _build(cfg, _sub(), _rendered(html=one_line_html, text=trailing))
    assert len(one_line_html) > 50_000
    _lines_ok(raw)
    got = _parse(raw)
    html_part = list(got.iter_parts())[1]
    assert html_part.get_content().rstrip("\r\n") == one_line_html


def test_confirmation_mail_has_no_list_unsubscribe(cfg) -> None:
    msg = mime.build_message(
        cfg,
        _sub(),
        _rendered(subject="Confirm"),
        message_id=mime.new_message_id(cfg, "confirm"),
        kind="confirm",
        now=NOW,
    )
    got = _parse(mime.to_bytes(msg))
    assert got["List-Unsubscribe"] is None and got["Message-ID"].endswith("@example.org>")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to make a test key")
def test_dkim_signature_verifies_and_covers_list_unsubscribe(tmp_path: Path) -> None:
    import dkim

    key = tmp_path / "dkim.pem"
    subprocess.run(
        ["openssl", "genrsa", "-traditional", "-out", str(key), "2048"],
        check=True,
        capture_output=True,
    )
    der = subprocess.run(
        ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)
    cfg = make_config(
        tmp_path,
        EXTRA.replace(
            "[email]\n",
            '[email]\ndkim_selector = "news"\ndkim_domain = "example.org"\n'
            'dkim_key_file = "dkim.pem"\n',
        ),
    )
    signer = DKIMSigner.from_config(cfg)
    assert signer is not None
    _, raw = _build(cfg, _sub(), _rendered(), signer=signer)
    assert raw.startswith(b"DKIM-Signature:")
    _lines_ok(raw)
    sig = _parse(raw)["DKIM-Signature"]
    covered = {h.strip().lower() for h in sig.split("h=", 1)[1].split(";", 1)[0].split(":")}
    assert {"list-unsubscribe", "list-unsubscribe-post", "from", "subject", "message-id"} <= covered
    assert dkim.verify(raw, dnsfunc=lambda name, timeout=5: record)
    assert not dkim.verify(
        raw.replace(b"One-Click", b"One-Klick"), dnsfunc=lambda n, timeout=5: record
    )


def test_incomplete_dkim_config_is_a_clear_error(tmp_path: Path) -> None:
    from newsletter.errors import ConfigError

    cfg = make_config(tmp_path, '[email]\ndkim_selector = "news"\n')
    with pytest.raises(ConfigError, match="dkim_domain"):
        DKIMSigner.from_config(cfg)
