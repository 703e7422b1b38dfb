"""``python -m guardd`` is the ``guardd`` command."""

from guardd.cli import entry

entry()
