"""``python -m node.demo [flags]``: the same as ``p2pex demo [flags]``."""

from __future__ import annotations

import sys

from node.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["demo", *sys.argv[1:]]))
