"""The subscriber lifecycle through its one owner: the CLI's opt-in e-mail read back from a real
aiosmtpd, the same validation rule in the CLI and the web, and every status change."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.config import load_config
from newsletter.models import SubscriberStatus
from newsletter.preferences import Preferences, check_preferences
from newsletter.store import Database
from newsletter.subscriptions import Confirmation, Subscriptions
from newsletter.tokens import read_token
from tests.conftest import SECRET, SMTPSink, free_port, make_config
from tests.web_support import TestClient, link_in, path_of

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
ENV = {"NEWSLETTER_SECRET_KEY": SECRET, "NEWSLETTER_CONFIG": ""}


def write_config(tmp_path: Path, port: int, database: str = "data/newsletter.db") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[storage]\ndata_dir = "data"\ndatabase = "{database}"\n'
        '[site]\nbase_url = "https://papers.example.org"\nname = "Test Digest"\n'
        'postal_address = "1 Test Street"\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n',
        encoding="utf-8",
    )
    return path


def subscribe(config: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--config", str(config), "subscribe", *args], env=ENV)
    assert result.exit_code == 0, result.output
    return result.output


def test_cli_subscribe_sends_the_opt_in_email_and_its_link_confirms(
    tmp_path: Path, database_target: str, smtp_server: SMTPSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    from newsletter.web.app import create_app

    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    config = write_config(tmp_path, smtp_server.port, database_target)
    said = subscribe(config, "x@example.org", "--interest", "graph neural networks")
    assert "subscribed x@example.org (pending)" in said
    assert "confirmation e-mail sent to x@example.org" in said
    (message,) = smtp_server.messages()
    assert message["To"].addresses[0].addr_spec == "x@example.org"
    assert smtp_server.received[0]["to"] == ["x@example.org"]
    link = link_in(message, "/confirm/")
    cfg = load_config(str(config))
    with Database(cfg.database) as store:
        (sub,) = store.subscribers.list()
        assert sub.status == SubscriberStatus.PENDING
        token = path_of(link).removeprefix("/confirm/")
        assert read_token(SECRET, "confirm", token).subscriber_id == sub.id
        # Asking again sends the link again and changes nothing else.
        assert "confirmation e-mail sent again" in subscribe(config, "x@example.org")
        assert len(smtp_server.messages()) == 2
        with TestClient(create_app(cfg)) as client:
            assert client.post(path_of(link)).status_code == 200
        assert store.subscribers.get(sub.id).status == SubscriberStatus.ACTIVE  # type: ignore[union-attr]


def test_cli_subscribe_confirmed_sends_nothing(
    tmp_path: Path, database_target: str, smtp_server: SMTPSink
) -> None:
    config = write_config(tmp_path, smtp_server.port, database_target)
    assert "(active)" in subscribe(config, "y@example.org", "--confirmed")
    assert smtp_server.messages() == []


def test_cli_and_web_share_one_validation_rule() -> None:
    bad = Preferences(keywords=["x" * 101], timezone="Mars/Olympus", hour=24, size=0)
    errors = check_preferences(bad)
    assert set(errors) == {"keywords", "timezone", "hour", "size"}
    assert "not an IANA timezone" in errors["timezone"]
    # The web form also wants at least one interest; the operator may subscribe a reader to
    # the trending digest alone.
    empty = Preferences(timezone="UTC")
    assert check_preferences(empty) == {}
    assert set(check_preferences(empty, need_interest=True)) == {"keywords"}


def test_every_status_change_goes_through_subscriptions(
    tmp_path: Path, database_target: str
) -> None:
    cfg = make_config(tmp_path, '[delivery]\nmethod = "maildir:outbox"\n', database_target)
    with Database(cfg.database) as store:
        people = Subscriptions(store, cfg, lambda: NOW)
        signup = people.register("Ann@Example.org", Preferences(keywords=["graphs"]))
        sub = signup.subscriber
        assert signup.created and sub.status == SubscriberStatus.PENDING

        def status() -> SubscriberStatus:
            current = store.subscribers.get(sub.id)
            assert current is not None
            return current.status

        assert people.confirm(sub) == Confirmation.CONFIRMS and status() == SubscriberStatus.ACTIVE
        current = store.subscribers.get(sub.id)
        assert current is not None and people.pause(current)
        assert status() == SubscriberStatus.PAUSED
        assert not people.pause(store.subscribers.get(sub.id))  # type: ignore[arg-type]
        assert people.resume(store.subscribers.get(sub.id))  # type: ignore[arg-type]
        assert people.unsubscribe(store.subscribers.get(sub.id))  # type: ignore[arg-type]
        assert status() == SubscriberStatus.UNSUBSCRIBED
        # Coming back asks the owner again, even after a confirmed sign-up.
        left = store.subscribers.get(sub.id)
        assert left is not None
        request = people.resubscribe(left)
        assert request is not None and status() == SubscriberStatus.UNSUBSCRIBED
        assert people.confirm(left) == Confirmation.STALE  # a link from before they left
        assert people.confirm(left, request) == Confirmation.CONFIRMS
        assert status() == SubscriberStatus.ACTIVE
        people.bounce(sub.id)
        assert status() == SubscriberStatus.BOUNCED


def test_a_never_confirmed_resubscribe_waits_for_the_opt_in(
    tmp_path: Path, database_target: str
) -> None:
    cfg = make_config(tmp_path, database=database_target)
    with Database(cfg.database) as store:
        people = Subscriptions(store, cfg, lambda: NOW)
        sub = people.register("bo@example.org", Preferences(keywords=["graphs"])).subscriber
        assert people.unsubscribe(sub)
        again = store.subscribers.get(sub.id)
        assert again is not None and people.resubscribe(again) is not None
        assert store.subscribers.get(sub.id).status == SubscriberStatus.UNSUBSCRIBED  # type: ignore[union-attr]


def test_a_signup_for_a_known_address_is_one_transaction(tmp_path: Path) -> None:
    """The request and the restarted expiry of a pending sign-up land together or not at all."""
    cfg = make_config(tmp_path)
    with Database(cfg.database_path) as store:
        people = Subscriptions(store, cfg, lambda: NOW)
        sub = people.register("cy@example.org", Preferences(keywords=["graphs"])).subscriber
        store.conn.execute(
            "CREATE TRIGGER no_restart BEFORE UPDATE OF created_at ON subscribers"
            " BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        )
        with pytest.raises(sqlite3.IntegrityError):
            people.register("cy@example.org", Preferences(keywords=["trees"]))
        count = store.conn.execute("SELECT count(*) FROM signup_requests").fetchone()[0]
        assert count == 0 and store.subscribers.get(sub.id) == sub


def test_a_confirmation_applies_its_preferences_and_activates_in_one_transaction(
    tmp_path: Path,
) -> None:
    cfg = make_config(tmp_path)
    with Database(cfg.database_path) as store:
        people = Subscriptions(store, cfg, lambda: NOW)
        sub = people.register("di@example.org", Preferences(keywords=["graphs"])).subscriber
        people.unsubscribe(sub)
        request = people.register("di@example.org", Preferences(keywords=["trees"])).request
        store.conn.execute(
            "CREATE TRIGGER no_activation BEFORE UPDATE OF status ON subscribers"
            " BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        )
        left = store.subscribers.get(sub.id)
        assert left is not None
        with pytest.raises(sqlite3.IntegrityError):
            people.confirm(left, request)
        assert [i.value for i in store.subscribers.interests_for(sub.id)] == ["graphs"]
        assert store.subscribers.signup_request(request or 0) is not None  # still usable
        store.conn.execute("DROP TRIGGER no_activation")
        assert people.confirm(left, request) == Confirmation.CONFIRMS
        assert [i.value for i in store.subscribers.interests_for(sub.id)] == ["trees"]


@pytest.mark.parametrize("raw", ["", "no-at-sign", "a@b@c", "x@example.org\r\nBcc: y@z"])
def test_the_address_rule_refuses_with_the_reason(
    tmp_path: Path, database_target: str, raw: str
) -> None:
    from newsletter.errors import InvalidAddressError

    cfg = make_config(tmp_path, database=database_target)
    with Database(cfg.database) as store, pytest.raises(InvalidAddressError):
        Subscriptions(store, cfg, lambda: NOW).register(raw, Preferences(keywords=["graphs"]))


def test_cli_refuses_an_address_the_mailer_cannot_write_and_stores_nothing(
    tmp_path: Path, database_target: str, smtp_server: SMTPSink
) -> None:
    config = write_config(tmp_path, smtp_server.port, database_target)
    args = ["--config", str(config), "subscribe", "jörg@example.com", "--interest", "graphs"]
    result = CliRunner().invoke(cli, args, env=ENV)
    assert result.exit_code == 1
    assert "the part before the @ contains 'ö'" in result.output and "SMTPUTF8" in result.output
    with Database(load_config(str(config)).database) as store:
        assert store.subscribers.list() == []
    assert smtp_server.messages() == []


def test_an_address_stored_before_the_rule_can_still_be_unsubscribed(
    tmp_path: Path, database_target: str, smtp_server: SMTPSink
) -> None:
    config = write_config(tmp_path, smtp_server.port, database_target)
    with Database(load_config(str(config)).database) as store:
        store.subscribers.add("jörg@example.com", NOW, status=SubscriberStatus.ACTIVE)
    args = ["--config", str(config), "unsubscribe", "jörg@example.com"]
    result = CliRunner().invoke(cli, args, env=ENV)
    assert result.exit_code == 0 and "unsubscribed jörg@example.com" in result.output


@pytest.mark.parametrize(
    "raw",
    [
        "ann@example.org",
        "jörg@example.com",
        "ann@bücher.example",
        "anna@straße.de",
        "ann@xn--bcher-kva.example",
        "a+tag@sub.example.co.uk",
        "ann@ex ample.org",
        "ann@☃.example",
        "ann@" + "a" * 64 + ".example",
    ],
)
def test_the_address_rule_is_the_rule_the_mailer_writes_headers_with(raw: str) -> None:
    """Whatever normalize_address accepts, the mailer can write into To:, and as the same
    domain the validator checked (IDNA 2008)."""
    from email_validator import validate_email

    from newsletter.delivery.mime import header_address
    from newsletter.errors import InvalidAddressError
    from newsletter.preferences import normalize_address

    try:
        address = normalize_address(raw)
    except InvalidAddressError:
        return
    written = header_address(address)
    checked = validate_email(address, check_deliverability=False, allow_smtputf8=False)
    assert written.addr_spec == checked.ascii_email


def test_cli_subscribe_with_the_relay_down_says_the_sign_up_is_kept(
    tmp_path: Path, smtp_server: SMTPSink
) -> None:
    down = free_port()  # nothing listens there
    config = write_config(tmp_path, down)
    args = ["--config", str(config), "subscribe", "x@example.org", "--interest", "GNNs"]
    failed = CliRunner().invoke(cli, args, env=ENV)
    assert failed.exit_code == 1 and "Traceback" not in failed.output
    assert "x@example.org is saved as pending: run this command again" in failed.output
    with Database(load_config(str(config)).database) as store:
        (sub,) = store.subscribers.list()
        assert sub.email == "x@example.org" and sub.status == SubscriberStatus.PENDING
    config.write_text(config.read_text().replace(f"port = {down}", f"port = {smtp_server.port}"))
    assert "confirmation e-mail sent again" in subscribe(config, "x@example.org")
    (message,) = smtp_server.messages()
    assert message["To"].addresses[0].addr_spec == "x@example.org"
