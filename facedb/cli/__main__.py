"""``python -m facedb.cli``: the ``facedb`` command without its installed script."""

from __future__ import annotations

import sys

from facedb.cli import main

if __name__ == "__main__":
    sys.exit(main())
