"""Benchmarks printed by `make bench`: each section module has a `run() -> None` that prints."""

from __future__ import annotations


def flag_values(argv: list[str], flags: tuple[str, ...], usage: str) -> dict[str, str]:
    """`--flag value` pairs of a section's options (the last of a repeated flag wins); an
    unknown flag or one without its value exits with `usage`."""
    out: dict[str, str] = {}
    args = list(argv)
    while args:
        flag = args.pop(0)
        if flag not in flags or not args:
            raise SystemExit(usage)
        out[flag] = args.pop(0)
    return out
