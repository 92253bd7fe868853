"""The `newsletter` command: thin click wrappers that parse, call the pipeline or the
subscriptions, and print. Only this package imports click.

`base` holds the group and what every command shares; each other module adds a few commands.
"""

from newsletter.cli import database, evaluation, operations, papers, readers, sending
from newsletter.cli.base import cli, main

__all__ = ["cli", "database", "evaluation", "main", "operations", "papers", "readers", "sending"]
