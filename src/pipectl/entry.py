"""The console script's entry point.

It imports the CLI inside ``main`` so that Ctrl-C while Python is still loading pipectl (the
first ~0.1 s) is also one line and exit 130, never a KeyboardInterrupt traceback.
"""

from __future__ import annotations

import sys


def main() -> int:
    try:
        from pipectl.cli import main as run
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted; nothing was changed\n")  # still loading
        return 130
    return run()
