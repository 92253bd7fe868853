"""Load `config.toml` plus environment overrides into frozen dataclasses.

Lookup order for the file: `--config`, then `NEWSLETTER_CONFIG`, then `./config.toml`.
Secrets: NEWSLETTER_SMTP_PASSWORD, NEWSLETTER_DATABASE_PASSWORD, NEWSLETTER_SECRET_KEY (or a file).
Every problem is one `ConfigError` that names the key and the fix.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tomllib
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from newsletter.config_checks import validate
from newsletter.errors import ConfigError
from newsletter.storage_config import PASSWORD_ENV, StorageConfig
from newsletter.tokens import signing_key

PACKAGE_DIR = Path(__file__).resolve().parent


def _first_existing(*candidates: Path) -> Path:
    return next((p for p in candidates if p.exists()), candidates[0])


# A checkout (or editable install) uses the top-level files; a wheel carries the templates as
# newsletter/templates/ and the example config under <prefix>/share/newsletter/.
REPO_TEMPLATES = _first_existing(
    PACKAGE_DIR.parent / "templates" / "email", PACKAGE_DIR / "templates" / "email"
).parent
EXAMPLE_CONFIG = _first_existing(
    PACKAGE_DIR.parent / "config.example.toml",
    Path(sys.prefix) / "share" / "newsletter" / "config.example.toml",
)


@dataclass(frozen=True)
class SourcesConfig:
    arxiv_categories: tuple[str, ...] = ("cs.LG", "cs.CL", "cs.CV")
    include_cross_lists: bool = True
    arxiv_rss: bool = True
    huggingface: bool = True
    arxiv_rss_url: str = "https://rss.arxiv.org/rss"
    arxiv_api_url: str = "https://export.arxiv.org/api/query"
    huggingface_url: str = "https://huggingface.co/api/daily_papers"
    contact_email: str = ""
    timeout_seconds: float = 30.0
    max_retries: int = 4
    arxiv_api_delay_seconds: float = 3.0


@dataclass(frozen=True)
class SiteConfig:
    base_url: str = "http://127.0.0.1:8000"
    name: str = "Paper Digest"
    operator_name: str = ""
    postal_address: str = ""
    templates_dir: str = ""
    secret_key_file: str = ""  # read the signing key from this file instead of the environment


@dataclass(frozen=True)
class EmailConfig:
    from_address: str = "digest@example.org"
    from_name: str = "Paper Digest"
    reply_to: str = ""
    subject_template: str = "Papers for {date:%a %d %b}: {top_title}"
    list_id: str = "Paper Digest <digest.example.org>"
    message_id_domain: str = "example.org"
    unsubscribe_mailto: str = ""
    dkim_selector: str = ""
    dkim_domain: str = ""
    dkim_key_file: str = ""


@dataclass(frozen=True)
class SMTPConfig:
    host: str = "127.0.0.1"
    port: int = 25
    security: str = "starttls"
    username: str = ""
    timeout_seconds: float = 30.0
    connections: int = 1
    rate_per_second: float = 0.0
    max_attempts: int = 4
    bounce_after: int = 3
    retry_backoff_seconds: float = 2.0


@dataclass(frozen=True)
class DeliveryConfig:
    method: str = "smtp"
    build_processes: int = -1  # processes rendering and building messages: -1 one per CPU
    build_from: int = 200  # runs with fewer digests build them in the sending process


@dataclass(frozen=True)
class DigestConfig:
    size: int = 10
    trending_size: int = 3
    excerpt_chars: int = 400
    window_days: int = 3
    timezone: str = "UTC"
    hour: int = 7
    category_mode: str = "boost"
    trending_weight: float = 0.25
    semantic_model: str = ""
    traction_threshold: int = 50  # upvotes that bring back a paper quiet on its first day


@dataclass(frozen=True)
class WebConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    pending_expiry_days: int = 7
    subscribe_per_hour: int = 5
    confirm_per_address_per_day: int = 3
    confirm_per_domain_per_hour: int = 50
    confirm_per_hour: int = 200


@dataclass(frozen=True)
class ScheduleConfig:
    fetch_times: tuple[str, ...] = ("00:30", "06:00")
    fetch_timezone: str = "America/New_York"
    misfire_grace_seconds: int = 3600


@dataclass(frozen=True)
class Config:
    storage: StorageConfig = field(default_factory=StorageConfig)
    sources: SourcesConfig = field(default_factory=SourcesConfig)
    site: SiteConfig = field(default_factory=SiteConfig)
    email: EmailConfig = field(default_factory=EmailConfig)
    smtp: SMTPConfig = field(default_factory=SMTPConfig)
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    digest: DigestConfig = field(default_factory=DigestConfig)
    web: WebConfig = field(default_factory=WebConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    base_dir: str = "."
    secret_key: str = field(default="", repr=False)
    smtp_password: str = field(default="", repr=False)
    database_password: str = field(default="", repr=False)

    def path(self, value: str) -> Path:
        """Resolve a path from the config relative to the config file's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else Path(self.base_dir) / p

    @property
    def database_path(self) -> Path:
        return self.path(self.storage.database)

    @property
    def database(self) -> str | Path:
        """What `store.Database` opens: a PostgreSQL URL or the SQLite file's path."""
        return self.storage.target(self.path)

    @property
    def templates_dir(self) -> Path:
        return self.path(self.site.templates_dir) if self.site.templates_dir else REPO_TEMPLATES

    def require_secret_key(self) -> str:
        if len(self.secret_key) < 16:
            raise ConfigError(
                "NEWSLETTER_SECRET_KEY is not set (or shorter than 16 characters): links in "
                "e-mails are signed with it. Set site.secret_key_file, or the environment, e.g. "
                "export NEWSLETTER_SECRET_KEY=$(python3 -c "
                "'import secrets; print(secrets.token_hex(32))')"
            )
        return self.secret_key


_SECTIONS = {
    f.name: f.type
    for f in dataclasses.fields(Config)
    if f.name not in {"base_dir", "secret_key", "smtp_password", "database_password"}
}


def _section_class(name: str) -> type:
    return {
        "storage": StorageConfig,
        "sources": SourcesConfig,
        "site": SiteConfig,
        "email": EmailConfig,
        "smtp": SMTPConfig,
        "delivery": DeliveryConfig,
        "digest": DigestConfig,
        "web": WebConfig,
        "schedule": ScheduleConfig,
    }[name]


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    if typing.get_origin(annotation) is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f'{key} must be a list of strings, e.g. {key.split(".")[-1]} = ["a"]')
        return tuple(value)
    scalar = _SCALARS.get(annotation)
    if scalar is not None:
        return scalar(key, value)
    if isinstance(annotation, types.UnionType):  # pragma: no cover - not used yet
        return value
    raise ConfigError(f"{key}: unsupported setting type")  # pragma: no cover


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false, not {value!r}")
    return value


def _int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key} must be a whole number, not {value!r}")
    return value


def _float(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{key} must be a number, not {value!r}")
    return float(value)


def _str(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{key} must be a string in quotes, not {value!r}")
    if "\r" in value or "\n" in value:
        raise ConfigError(f"{key} must be one line: line breaks are not allowed")
    return value


_SCALARS: dict[Any, Callable[[str, Any], Any]] = {bool: _bool, int: _int, float: _float, str: _str}


def _build_section(name: str, raw: Any) -> Any:
    cls = _section_class(name)
    if not isinstance(raw, dict):
        raise ConfigError(f"[{name}] must be a table of settings")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(
            f"unknown setting {name}.{unknown[0]}: check the spelling against config.example.toml "
            f"(known keys in [{name}]: {', '.join(sorted(known))})"
        )
    values = {k: _coerce(f"{name}.{k}", v, hints[k]) for k, v in raw.items()}
    return cls(**values)


def parse_config(
    text: str, base_dir: Path | str = ".", env: dict[str, str] | None = None, source: str = "config"
) -> Config:
    """Parse TOML text (plus environment secrets) into a validated `Config`."""
    env = dict(os.environ) if env is None else env
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source} is not valid TOML: {exc}") from None
    unknown = sorted(set(raw) - set(_SECTIONS))
    if unknown:
        raise ConfigError(
            f"unknown section [{unknown[0]}] in {source}: known sections are "
            + ", ".join(f"[{s}]" for s in _SECTIONS)
        )
    sections = {name: _build_section(name, raw[name]) for name in _SECTIONS if name in raw}
    cfg = Config(
        **sections,
        base_dir=str(base_dir),
        secret_key=signing_key(sections.get("site", SiteConfig()).secret_key_file, base_dir, env),
        smtp_password=env.get("NEWSLETTER_SMTP_PASSWORD", ""),
        database_password=env.get(PASSWORD_ENV, ""),
    )
    validate(cfg)
    return cfg


def find_config_path(explicit: str | None = None) -> Path | None:
    """`--config`, then `NEWSLETTER_CONFIG`, then `./config.toml` (None when none exists)."""
    if explicit:
        return Path(explicit)
    env_path = os.environ.get("NEWSLETTER_CONFIG")
    if env_path:
        return Path(env_path)
    local = Path("config.toml")
    return local if local.exists() else None


def load_config(explicit: str | None = None, *, required: bool = True) -> Config:
    """Load the configuration once at the entry point."""
    path = find_config_path(explicit)
    if path is None:
        if required:
            raise ConfigError(
                "no config.toml here: run `newsletter init` to write one from the example, "
                "or pass --config PATH (or set NEWSLETTER_CONFIG)"
            )
        return parse_config("", base_dir=Path.cwd())
    if not path.exists():
        raise ConfigError(
            f"config file {path} does not exist: run `newsletter init` or fix --config"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {path} is not UTF-8 text (byte {exc.start}): save it as UTF-8"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc.strerror or exc}") from None
    return parse_config(text, base_dir=path.resolve().parent, source=str(path))
