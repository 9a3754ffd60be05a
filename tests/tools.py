"""Tests that need a program or a setup the machine may lack.

Locally such a test is skipped, saying what to install. In CI
(UPDMIRROR_REQUIRE_TOOLS=1: .ci/run installs every tool) it fails instead,
so a broken install step cannot pass unnoticed. Every tool-dependent test
goes through here, so the rule does not depend on the words of a reason:

    @needs_tool("gpg", "apt-get install gnupg")          # a marker, checked at setup
    path = require_tool("htpasswd", "apt-get install apache2-utils")
    missing("Samba is not startable: ...")               # anything but one program
"""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest

REQUIRED = "UPDMIRROR_REQUIRE_TOOLS"


def missing(reason: str) -> NoReturn:
    """Skip this test for `reason`, or fail it in CI."""
    if os.environ.get(REQUIRED) == "1":
        pytest.fail(f"required tool missing in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def require_tool(name: str, install: str, *, path: str | None = None) -> str:
    """The program `name` (found on PATH, or at `path`), or missing()."""
    found = (path if path and os.access(path, os.X_OK) else None) if path else shutil.which(name)
    if not found:
        missing(f"{name} is not installed ({install})")
    return found


def needs_tool(name: str, install: str, *, path: str | None = None) -> pytest.MarkDecorator:
    """A marker for a test (or, as `pytestmark`, a module) that runs `name`."""
    return pytest.mark.tool(name, install, path=path)


def check_markers(item: pytest.Item) -> None:
    """Called by conftest.py before each test runs."""
    for mark in item.iter_markers("tool"):
        require_tool(*mark.args, **mark.kwargs)
