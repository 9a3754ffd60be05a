import os
import socket

import pytest

import sambakit


@pytest.fixture
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI (UPDMIRROR_REQUIRE_TOOLS=1), a test skipped because a tool is
    missing fails instead: .ci/run installs every tool, so such a skip means
    an install step is broken, and it must not pass unnoticed."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("UPDMIRROR_REQUIRE_TOOLS") == "1":
        reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if "not installed" in reason:
            report.outcome = "failed"
            report.longrepr = f"required tool missing in CI: {reason}"


@pytest.fixture(scope="session")
def samba():
    """A Samba server on loopback: the one .ci/run started, or one of our own."""
    found = sambakit.from_environment()
    if found is not None:
        yield found
        return
    reason = sambakit.why_not_startable()
    if reason:
        pytest.skip(f"Samba not installed or not startable: {reason}")
    own = sambakit.OwnSamba()
    try:
        yield own.start()
    finally:
        own.stop()
