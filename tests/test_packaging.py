"""The package layout setuptools installs without warnings, and the templates it ships."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_every_package_sits_where_its_name_says() -> None:
    """A package mapped elsewhere (`newsletter.templates = "templates"`) makes every editable
    install print setuptools' "Editable installation" warning; the templates are a symlink."""
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    tool = meta["tool"]["setuptools"]
    assert tool["package-dir"] == {"": "."}
    for package in tool["packages"]:
        assert (ROOT / package.replace(".", "/")).is_dir(), package
    link = ROOT / "newsletter" / "templates"
    assert link.is_symlink() and link.resolve() == (ROOT / "templates").resolve()
    shipped = tool["package-data"]["newsletter.templates"]
    for pattern in shipped:
        assert list(link.glob(pattern)), pattern
