"""Config: the example parses, every key is documented, bad keys give one clear ConfigError."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from newsletter.config import EXAMPLE_CONFIG, load_config, parse_config
from newsletter.errors import ConfigError


def test_example_config_parses_and_documents_every_key() -> None:
    cfg = parse_config(EXAMPLE_CONFIG.read_text(), env={})
    assert cfg.sources.arxiv_categories == ("cs.LG", "cs.CL", "cs.CV")
    assert cfg.sources.arxiv_api_delay_seconds >= 3
    lines = EXAMPLE_CONFIG.read_text().splitlines()
    start = lines.index("[sources]")
    for field in dataclasses.fields(type(cfg.sources)):
        at = next(i for i in range(start, len(lines)) if lines[i].startswith(f"{field.name} = "))
        above = at - 1
        while lines[above] and not lines[above].startswith(("#", "[")):
            above -= 1  # a group of keys under one comment
        assert lines[above].startswith("#"), f"sources.{field.name} has no comment"


def test_secrets_come_from_the_environment() -> None:
    cfg = parse_config(
        "", env={"NEWSLETTER_SECRET_KEY": "k" * 20, "NEWSLETTER_SMTP_PASSWORD": "pw"}
    )
    assert cfg.secret_key == "k" * 20 and cfg.smtp_password == "pw"
    assert "pw" not in repr(cfg) and "k" * 20 not in repr(cfg)
    with pytest.raises(ConfigError, match="NEWSLETTER_SECRET_KEY is not set"):
        parse_config("", env={}).require_secret_key()


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[sources]\narxiv_categoris = []\n", "unknown setting sources.arxiv_categoris"),
        ("[source]\n", "unknown section [source]"),
        ('[sources]\narxiv_categories = "cs.LG"\n', "sources.arxiv_categories must be a list"),
        (
            "[sources]\ninclude_cross_lists = 1\n",
            "sources.include_cross_lists must be true or false",
        ),
        ('[sources]\nmax_retries = "4"\n', "sources.max_retries must be a whole number"),
        ('[sources]\narxiv_rss_url = "rss.arxiv.org/rss"\n', "sources.arxiv_rss_url must start"),
        ('[sources]\narxiv_categories = ["machine learning"]\n', "not an arXiv category"),
        ("[sources]\narxiv_categories = []\n", "sources.arxiv_categories is empty"),
        ("[sources]\narxiv_api_delay_seconds = 1.0\n", "at least 3 for export.arxiv.org"),
        ("[sources]\ntimeout_seconds = 0\n", "sources.timeout_seconds must be more than 0"),
        ('[sources]\ncontact_email = "a@b.org\\nX: y"\n', "must be one line"),
        ("[sources\n", "is not valid TOML"),
        ("[delivery]\nbuild_processes = -2\n", "delivery.build_processes must be -1"),
        ('[delivery]\nbuild_processes = "auto"\n', "delivery.build_processes must be a whole"),
        ("[delivery]\nbuild_from = -1\n", "delivery.build_from cannot be negative"),
        ('[email]\nfrom_address = "dïgest@example.org"\n', "email.from_address cannot be used"),
        ('[email]\nfrom_address = "digest example.org"\n', "email.from_address cannot be used"),
        ('[email]\nreply_to = "a b@example.org"\n', "email.reply_to cannot be used"),
        ('[email]\nunsubscribe_mailto = "u@bücher.de"\n', "email.unsubscribe_mailto cannot"),
        ("[storage]\nsend_batch = 0\n", "storage.send_batch must be between 1 and 10,000"),
        ("[storage]\nsend_batch = 70000\n", "storage.send_batch must be between 1 and 10,000"),
        ("[digest]\ntrending_weight = -1\n", "digest.trending_weight is -1.0: it must be between"),
        ("[digest]\ntrending_weight = nan\n", "digest.trending_weight is nan"),
        ("[digest]\ntrending_weight = 1e9\n", "digest.trending_weight is 1000000000.0"),
    ],
)
def test_bad_settings_name_the_key(toml: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(toml, env={})


def test_a_local_mirror_may_go_faster_than_arxiv() -> None:
    cfg = parse_config(
        '[sources]\narxiv_api_url = "http://127.0.0.1:9/api/query"\narxiv_api_delay_seconds = 0\n',
        env={},
    )
    assert cfg.sources.arxiv_api_delay_seconds == 0
    assert parse_config("[sources]\narxiv_rss = false\narxiv_categories = []\n", env={})


def test_paths_are_relative_to_the_config_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("NEWSLETTER_CONFIG", raising=False)
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "config.toml"
    path.write_text('[storage]\ndatabase = "state/n.db"\n')
    cfg = load_config(str(path))
    assert cfg.database_path == tmp_path / "conf" / "state" / "n.db"


def test_missing_config_says_how_to_fix(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NEWSLETTER_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="run `newsletter init`"):
        load_config(None)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(str(tmp_path / "nope.toml"))


def test_the_signing_key_can_come_from_a_key_file(tmp_path: Path) -> None:
    """site.secret_key_file (relative to the config's folder) wins over the environment, so
    links signed with it stay valid whatever the shell exports; a bad file is a clear error."""
    key = "k" * 32
    (tmp_path / "secret.key").write_text(key + "\n", encoding="utf-8")
    text = '[site]\nsecret_key_file = "secret.key"\n'
    env = {"NEWSLETTER_SECRET_KEY": "e" * 32}
    assert parse_config(text, base_dir=tmp_path, env=env).require_secret_key() == key
    assert parse_config(text, base_dir=tmp_path, env={}).require_secret_key() == key
    assert parse_config("", base_dir=tmp_path, env=env).secret_key == "e" * 32
    with pytest.raises(ConfigError, match=r"secret_key_file .*missing\.key cannot be read"):
        parse_config('[site]\nsecret_key_file = "missing.key"\n', base_dir=tmp_path, env={})
    (tmp_path / "short.key").write_text("abc\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="fewer than 16 characters"):
        parse_config('[site]\nsecret_key_file = "short.key"\n', base_dir=tmp_path, env={})
