"""Benchmarks printed by `make bench`: each section module has a `run() -> None` that prints."""
