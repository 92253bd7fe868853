"""`python -m newsletter.bench [SECTION ...]`: run the benchmark sections and print figures."""

from __future__ import annotations

import importlib
import sys

SECTIONS = ("fetch", "rank", "render", "send", "latex", "site", "serve", "workers")
WITH_OPTIONS = ("send", "rank")  # sections whose run() takes the options written after them


def main(argv: list[str]) -> int:
    """Sections by name; the options after `send` or `rank` (e.g. `send --subscribers 100000`,
    `rank --against ../base`), up to the next section's name, go to that section."""
    options: dict[str, list[str]] = {}
    for name in WITH_OPTIONS:
        if name in argv:
            at = argv.index(name)
            end = next((i for i in range(at + 1, len(argv)) if argv[i] in SECTIONS), len(argv))
            argv, options[name] = argv[: at + 1] + argv[end:], argv[at + 1 : end]
    wanted = argv or list(SECTIONS)
    for name in wanted:
        if name not in SECTIONS:
            print(f"unknown benchmark section {name!r}; choose from {', '.join(SECTIONS)}")
            return 2
        module = importlib.import_module(f"newsletter.bench.{name}")
        print(f"== {name} ==", flush=True)
        if name in WITH_OPTIONS:
            module.run(options.get(name, []))
        else:
            module.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
