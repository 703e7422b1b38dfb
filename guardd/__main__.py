"""``python -m guardd`` is the ``guardd`` command."""

import sys

try:
    from guardd.cli import entry
except KeyboardInterrupt:  # Ctrl-C while the command line is still being imported: no traceback
    sys.exit(130)

entry()
