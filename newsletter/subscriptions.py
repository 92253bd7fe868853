"""The subscriber lifecycle in one place.

Every status change goes through `Subscriptions`: sign-up (pending, with the opt-in e-mail),
confirm, pause, resume, unsubscribe (with a notice), resubscribe and bounce. The CLI, the web
app, the send ledger (bounces) and the demo call these methods; none of them sets a status
itself. Each method validates with the rule in `preferences.py`, so the CLI and the web
accept and refuse the same input.

    pending ──confirm──▶ active ◀──resume── paused
                           │ ──pause──────────▲
                           │ unsubscribe / bounce
                           ▼
          unsubscribed | bounced ──resubscribe: an e-mail, then confirm──▶ active

Whoever types an address into the sign-up form, or holds the unsubscribe link of a forwarded
digest, may not own the address. So a sign-up for a known address, and a request to come back,
change nothing stored: they become a sign-up request that the confirmation e-mail names, and
only a click on that link applies its preferences and makes the reader active.
"""

from __future__ import annotations

import functools
import hmac
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from newsletter import links
from newsletter.config import Config
from newsletter.errors import NewsletterError
from newsletter.models import SignupRequest, Subscriber, SubscriberStatus
from newsletter.preferences import (
    InvalidPreferences,
    Preferences,
    carry_over,
    check_preferences,
    normalize_address,
    preferences_of,
)
from newsletter.store import Database
from newsletter.tokens import TokenData, make_token

if TYPE_CHECKING:
    from newsletter.delivery import Mailer
    from newsletter.render.renderer import RenderedEmail

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SignUp:
    """What a sign-up did, for the caller's message."""

    subscriber: Subscriber  # as it was before the change
    created: bool  # a new row
    changed: bool  # interests or status changed
    mailed: bool  # the opt-in e-mail went out
    added: int = 0  # interests added to a known subscriber
    request: int | None = None  # the sign-up request its confirmation e-mail must name
    mix_changed: bool = False  # a known subscriber's trending mix changed


class Confirmation(StrEnum):
    """What a confirmation link does."""

    CONFIRMS = "confirms"  # activates (with the preferences of the sign-up it names)
    ALREADY = "already"  # active or paused: nothing to do
    STALE = "stale"  # the reader left after it was sent: it no longer brings them back


def resubscribe_url(cfg: Config, subscriber: Subscriber) -> str:
    """The web page that undoes an unsubscribe (it carries the long-lived unsubscribe token)."""
    token = make_token(cfg.require_secret_key(), "unsubscribe", subscriber.id, subscriber.nonce)
    return cfg.site.base_url.rstrip("/") + "/resubscribe/" + token


class Subscriptions:
    """Status changes and account mail for one store. `mailer` is built on first use."""

    def __init__(
        self,
        store: Database,
        cfg: Config,
        clock: Callable[[], datetime],
        mailer: Mailer | Callable[[], Mailer] | None = None,
        mail_lock: threading.Lock | None = None,
    ) -> None:
        self.store = store
        self.cfg = cfg
        self.clock = clock
        self._mailer = mailer
        self._mail_lock = mail_lock or threading.Lock()  # a mailer holds one connection

    # ------------------------------------------------------------ account mail

    def mailer(self) -> Mailer:
        from newsletter.delivery import mailer_from_config

        if self._mailer is None:
            self._mailer = mailer_from_config(self.cfg)
        elif callable(self._mailer) and not hasattr(self._mailer, "send"):
            self._mailer = self._mailer()
        return self._mailer  # type: ignore[return-value]

    def _send_account_mail(
        self, subscriber: Subscriber, kind: str, request_id: int | None = None
    ) -> str:
        from newsletter.delivery import build_message, new_message_id

        current = self.store.subscribers.get(subscriber.id) or subscriber
        renderer = _account_renderer(self.cfg)
        rendered: RenderedEmail
        if kind == "confirm":
            url = links.confirm_url(self.cfg, current, request_id)
            rendered = renderer.confirmation(current, url)
        else:
            rendered = renderer.unsubscribed(current, resubscribe_url(self.cfg, current))
        message_id = new_message_id(self.cfg, kind)
        message = build_message(
            self.cfg, current, rendered, message_id=message_id, kind=kind, now=self.clock()
        )
        with self._mail_lock:
            self.mailer().send(message)
        log.info("sent %s e-mail %s to subscriber %s", kind, message_id, current.id)
        return message_id

    def send_confirmation(self, subscriber: Subscriber, request_id: int | None = None) -> str:
        """E-mail the double opt-in link (naming the sign-up request `request_id`, when there
        is one); returns the Message-ID. Raises DeliveryError."""
        return self._send_account_mail(subscriber, "confirm", request_id)

    def send_unsubscribed_notice(self, subscriber: Subscriber) -> str:
        """E-mail "you are unsubscribed" with a way back; returns the Message-ID."""
        return self._send_account_mail(subscriber, "notice")

    def holder(self, data: TokenData) -> Subscriber | None:
        """The subscriber a verified token names, or None when the row it was minted for is gone.

        The token's nonce must be the row's: ids are not reused, and even a reused one would
        not match. A token without a nonce (minted before rows had one) is accepted only for
        rows that existed then (`legacy_links`)."""
        sub = self.store.subscribers.get(data.subscriber_id)
        if sub is None:
            return None
        if not data.nonce:
            return sub if sub.legacy_links else None
        return sub if hmac.compare_digest(data.nonce, sub.nonce) else None

    # ------------------------------------------------------------ lifecycle

    def _expiry_cutoff(self) -> datetime:
        return self.clock() - timedelta(days=self.cfg.web.pending_expiry_days)

    def expire_pending(self) -> int:
        """Forget sign-ups nobody confirmed within `web.pending_expiry_days`."""
        return self.store.subscribers.expire_pending(self._expiry_cutoff())

    def expired(self, subscriber: Subscriber) -> bool:
        """A pending sign-up nobody confirmed in time (the next `expire_pending` removes it)."""
        created = subscriber.created_at
        pending = subscriber.status == SubscriberStatus.PENDING
        return pending and created is not None and created < self._expiry_cutoff()

    def register(self, email: str, prefs: Preferences) -> SignUp:
        """Save a web sign-up without revealing or disturbing what is stored for the address.

        A new address is stored as pending. A known one keeps what it has: an active or paused
        subscriber is left as is; for a pending, unsubscribed or bounced one the preferences
        wait in a sign-up request (`SignUp.request`), applied only when the confirmation link
        naming it is used. Whoever typed the address may not own it."""
        errors = check_preferences(prefs)
        if errors:
            raise InvalidPreferences(errors)
        address = normalize_address(email)
        now = self.clock()
        subs = self.store.subscribers
        self.expire_pending()
        existing = subs.get_by_email(address)
        if existing is None:
            sub = self._add(address, prefs, SubscriberStatus.PENDING)
            log.info("sign-up: new pending subscriber %s", sub.id)
            return SignUp(sub, created=True, changed=True, mailed=False)
        log.info("sign-up for known subscriber %s (%s)", existing.id, existing.status)
        if existing.status in (SubscriberStatus.ACTIVE, SubscriberStatus.PAUSED):
            return SignUp(existing, created=False, changed=False, mailed=False)
        with self.store.transaction():
            request = subs.add_signup_request(
                existing.id,
                now,
                name=prefs.name,
                timezone=prefs.timezone,
                delivery_hour=prefs.hour,
                digest_size=prefs.size,
                interests=prefs.interests(),
            )
            if existing.status == SubscriberStatus.PENDING:  # submitted again: lives longer
                subs.restart_pending(existing.id, now)
        return SignUp(existing, created=False, changed=False, mailed=False, request=request.id)

    def add_by_operator(
        self, email: str, prefs: Preferences, *, confirmed: bool, set_trending: bool = False
    ) -> SignUp:
        """`newsletter subscribe`: a new address gets the opt-in e-mail (or, with `confirmed`,
        which is only for people who asked the operator directly, is active at once). A known
        address keeps its settings and gains the interests it lacked (and, with `set_trending`,
        takes `prefs.trending`); a pending one is sent the opt-in e-mail again; an unsubscribed
        or bounced one changes only when `confirmed`."""
        errors = check_preferences(prefs)
        if errors:
            raise InvalidPreferences(errors)
        address = normalize_address(email)
        subs = self.store.subscribers
        existing = subs.get_by_email(address)
        if existing is None:
            status = SubscriberStatus.ACTIVE if confirmed else SubscriberStatus.PENDING
            sub = self._add(address, prefs, status)
            if not confirmed:
                self.send_confirmation(sub)
            return SignUp(sub, created=True, changed=True, mailed=not confirmed)
        left = existing.status in (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED)
        if left and not confirmed:
            return SignUp(existing, created=False, changed=False, mailed=False)
        now = self.clock()
        current = subs.interests_for(existing.id)
        known = {(i.kind, i.value) for i in current}
        fresh = [i for i in prefs.interests() if (i.kind, i.value) not in known]
        # The limits hold for what the reader ends up with, not for one call's additions
        # (thirty-one `--author` calls made a list the manage page then refused to save).
        errors = check_preferences(preferences_of(existing, [*current, *fresh]))
        if fresh and errors:
            raise InvalidPreferences(
                {k: f"{v} (counting the ones {address} has already)" for k, v in errors.items()}
            )
        activate = confirmed and existing.status != SubscriberStatus.ACTIVE
        mix = set_trending and prefs.trending != existing.trending_mix
        with self.store.transaction():
            if fresh:
                subs.add_interests(existing.id, fresh, now)
            if activate:
                subs.set_status(existing.id, SubscriberStatus.ACTIVE, now)
            if mix:
                subs.update(existing.id, now, trending_mix=prefs.trending)
        mailed = existing.status == SubscriberStatus.PENDING and not confirmed
        if mailed:
            self.send_confirmation(existing)
        changed = bool(fresh) or activate or mix
        return SignUp(existing, False, changed, mailed, added=len(fresh), mix_changed=mix)

    def _add(self, address: str, prefs: Preferences, status: SubscriberStatus) -> Subscriber:
        now = self.clock()
        subs = self.store.subscribers
        with self.store.transaction():
            sub, _ = subs.add(
                address,
                now,
                name=prefs.name,
                status=status,
                timezone=prefs.timezone,
                delivery_hour=prefs.hour,
                digest_size=prefs.size,
            )
            if prefs.trending:
                subs.update(sub.id, now, trending_mix=prefs.trending)
            subs.set_interests(sub.id, prefs.interests(), now)
        return subs.get(sub.id) or sub

    def _request(self, subscriber: Subscriber, request_id: int | None) -> SignupRequest | None:
        """The sign-up request of `subscriber` a link names, unless it is gone or expired."""
        request = None if request_id is None else self.store.subscribers.signup_request(request_id)
        if request is None or request.subscriber_id != subscriber.id:
            return None
        if request.created_at is not None and request.created_at < self._expiry_cutoff():
            return None
        return request

    def confirmation(self, subscriber: Subscriber, request_id: int | None = None) -> Confirmation:
        """What the confirmation link naming `request_id` would do (changes nothing).

        A pending sign-up is confirmed by any of its links. Someone who left (unsubscribed or
        bounced) comes back only through a link naming a request made since: an older link,
        from before they left, no longer acts."""
        if subscriber.status in (SubscriberStatus.ACTIVE, SubscriberStatus.PAUSED):
            return Confirmation.ALREADY
        if subscriber.status == SubscriberStatus.PENDING:
            return Confirmation.CONFIRMS
        if self._request(subscriber, request_id) is not None:
            return Confirmation.CONFIRMS
        return Confirmation.STALE

    def confirm(self, subscriber: Subscriber, request_id: int | None = None) -> Confirmation:
        """Use a confirmation link: apply the preferences of the sign-up request it names (if
        any), then activate. Becoming active answers every other waiting request."""
        subs = self.store.subscribers
        with self.store.transaction():
            current = subs.get(subscriber.id) or subscriber
            outcome = self.confirmation(current, request_id)
            if outcome != Confirmation.CONFIRMS:
                return outcome
            request = self._request(current, request_id)
            if request is not None and request.interests is not None:
                self._apply(current, request)
            subs.set_status(current.id, SubscriberStatus.ACTIVE, self.clock())
        log.info("subscriber %s confirmed (request %s)", current.id, request_id)
        return Confirmation.CONFIRMS

    def _apply(self, sub: Subscriber, request: SignupRequest) -> None:
        """The settings a confirmed sign-up asked for replace the stored ones."""
        subs, now, hour = self.store.subscribers, self.clock(), request.delivery_hour
        subs.update(
            sub.id,
            now,
            name=request.name or sub.name,
            timezone=request.timezone or sub.timezone,
            delivery_hour=sub.delivery_hour if hour is None else hour,
            digest_size=request.digest_size or sub.digest_size,
        )
        wanted = request.interests or ()
        subs.set_interests(sub.id, carry_over(wanted, subs.interests_for(sub.id)), now)

    def pause(self, subscriber: Subscriber) -> bool:
        return self._move(subscriber, SubscriberStatus.ACTIVE, SubscriberStatus.PAUSED)

    def resume(self, subscriber: Subscriber) -> bool:
        return self._move(subscriber, SubscriberStatus.PAUSED, SubscriberStatus.ACTIVE)

    def _move(self, sub: Subscriber, before: SubscriberStatus, after: SubscriberStatus) -> bool:
        if sub.status != before:
            return False
        self.store.subscribers.set_status(sub.id, after, self.clock())
        return True

    def unsubscribe(self, subscriber: Subscriber) -> bool:
        """Unsubscribe now; True when the status changed. The notice is `notify_unsubscribed`'s
        job (the web app sends it after answering, the CLI does not)."""
        if subscriber.status == SubscriberStatus.UNSUBSCRIBED:
            return False
        self.store.subscribers.set_status(
            subscriber.id, SubscriberStatus.UNSUBSCRIBED, self.clock()
        )
        return True

    def notify_unsubscribed(self, subscriber: Subscriber) -> None:
        """Send the "you are unsubscribed" notice; a failure is logged, the unsubscribe stands."""
        try:
            self.send_unsubscribed_notice(subscriber)
        except (NewsletterError, OSError) as exc:
            log.warning("unsubscribe notice to subscriber %s failed: %s", subscriber.id, exc)

    def resubscribe(self, subscriber: Subscriber) -> int | None:
        """Ask to come back after an unsubscribe or a bounce: returns the sign-up request the
        confirmation e-mail must name (None when there is nothing to come back from). Nothing
        changes until that link is used: the unsubscribe link of a forwarded digest, which is
        all it takes to ask, is not the reader's consent."""
        if subscriber.status not in (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED):
            return None
        return self.store.subscribers.add_signup_request(subscriber.id, self.clock()).id

    def bounce(self, subscriber_id: int) -> None:
        """Stop mailing an address the server keeps refusing (the ledger's bounce rule)."""
        self.store.subscribers.set_status(subscriber_id, SubscriberStatus.BOUNCED, self.clock())

    def save_preferences(self, subscriber: Subscriber, prefs: Preferences) -> None:
        """Replace a subscriber's delivery settings and interests (likes and dislikes kept)."""
        errors = check_preferences(prefs)
        if errors:
            raise InvalidPreferences(errors)
        subs, now = self.store.subscribers, self.clock()
        with self.store.transaction():
            previous = subs.interests_for(subscriber.id)
            subs.update(
                subscriber.id,
                now,
                timezone=prefs.timezone,
                delivery_hour=prefs.hour,
                digest_size=prefs.size,
                trending_mix=prefs.trending,
            )
            subs.set_interests(subscriber.id, prefs.interests(previous), now)


@functools.lru_cache(maxsize=4)
def _account_renderer(cfg: Config) -> Any:
    from newsletter.render.renderer import Renderer  # loaded only when account mail is sent

    return Renderer(cfg)
