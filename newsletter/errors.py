"""The few exceptions the CLI turns into clean messages (no tracebacks)."""


class NewsletterError(Exception):
    """Base class: the message speaks to the user and says what to do."""


class ConfigError(NewsletterError):
    """A missing or invalid configuration key; the message names the key and the fix."""


class FeedError(NewsletterError):
    """A source answered with something we could not use."""


class DeliveryError(NewsletterError):
    """A message could not be delivered, or a send run could not start.

    `temporary` is True for what may work later (4xx replies, dropped connections, timeouts);
    `reply` is the server's answer ("550 5.1.1 no such user"), empty when there was none;
    `bounce` says whether a permanent failure is the recipient's (a refused mailbox: it counts
    toward `smtp.bounce_after`) rather than the message's (too big, refused content or policy,
    an address we cannot write), which fails that day's message and nothing more.
    """

    def __init__(
        self, message: str, *, temporary: bool = False, reply: str = "", bounce: bool = True
    ) -> None:
        super().__init__(message)
        self.temporary = temporary
        self.reply = reply
        self.bounce = bounce


class InvalidAddressError(NewsletterError):
    """An e-mail address that cannot be used; the message says why."""


class LockedError(NewsletterError):
    """Another run holds the send lock."""


class LibraryError(NewsletterError):
    """A library export to import likes from is unreadable or too large; names line or entry."""


class DatabaseUnavailable(NewsletterError):
    """The database server cannot be reached (PostgreSQL down, wrong URL or password)."""
