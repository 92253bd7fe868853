"""`python -m newsletter.bench [SECTION ...]`: run the benchmark sections and print figures."""

from __future__ import annotations

import importlib
import sys

SECTIONS = ("fetch", "rank", "render", "send", "latex", "site", "workers")


def main(argv: list[str]) -> int:
    """Sections by name; options after `send` (e.g. `send --subscribers 100000`) go to it."""
    options: list[str] = []
    if "send" in argv:
        at = argv.index("send")
        argv, options = argv[: at + 1], argv[at + 1 :]
    wanted = argv or list(SECTIONS)
    for name in wanted:
        if name not in SECTIONS:
            print(f"unknown benchmark section {name!r}; choose from {', '.join(SECTIONS)}")
            return 2
        module = importlib.import_module(f"newsletter.bench.{name}")
        print(f"== {name} ==", flush=True)
        if name == "send":
            module.run(options)
        else:
            module.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
