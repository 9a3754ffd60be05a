"""How big the reliability checks run: CI sizes by default, the long check's
with UPDMIRROR_LONG=1, and any one figure from its own variable."""

from __future__ import annotations

import os

LONG = os.environ.get("UPDMIRROR_LONG") == "1"


def size(name: str, ci: int, long: int) -> int:
    """The figure `name` (an environment variable) or its CI or long default."""
    return int(os.environ.get(name, long if LONG else ci))
