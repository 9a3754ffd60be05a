import os
import shutil

import pytest

import mirrorkit
import sambakit
import serverkit
import tierkit
import tools


@pytest.fixture
def free_port() -> int:
    return serverkit.free_port()


def pytest_configure(config):
    config.addinivalue_line("markers", "tool(name, install): the test runs this program (tests/tools.py)")


def pytest_runtest_setup(item):
    """A test marked @needs_tool is skipped without its tool, or fails in CI (tests/tools.py)."""
    tools.check_markers(item)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """The old rule, for tests not on tools.py yet (tests/serve/test_status_browser.py and
    test_status_deploy.py, being moved to tests/status/ on another branch): in CI a skip
    whose reason says "not installed" fails. Remove once they use needs_tool."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get(tools.REQUIRED) == "1":
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
        tools.missing(f"Samba not installed or not startable: {reason}")
    own = sambakit.OwnSamba()
    try:
        yield own.start()
    finally:
        own.stop()


@pytest.fixture(scope="session")
def release_vendor(tmp_path_factory):
    """A simulated vendor repository (ep11, v16, v5) at release 1, for mirrors to sync."""
    from updmirror.vendor.generate import VendorState, generate

    root = tmp_path_factory.mktemp("release-vendor")
    generate(root, seed=5, size_mb=2, trees=mirrorkit.TREES)
    return root, VendorState.load(root).fingerprint


@pytest.fixture
def mirror(release_vendor):
    """A mirror of its own copy of `release_vendor`, configured but not synced yet."""
    m = mirrorkit.start_mirror(*release_vendor)
    try:
        yield m
    finally:
        mirrorkit.stop_mirror(m)


@pytest.fixture(scope="session")
def store_cache(release_vendor, tmp_path_factory):
    cache_dir = mirrorkit.public_dir("updmirror-stores-")
    try:
        yield mirrorkit.StoreCache(*release_vendor, cache_dir)
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)


@pytest.fixture
def synced(store_cache, release_vendor):
    """Like `mirror`, but its syncs copy stores synced once per session (no vendor server)."""
    root = mirrorkit.public_dir("updmirror-mirror-")
    m = mirrorkit.CachedMirror(release_vendor[0], None, root, release_vendor[1])
    m.cache = store_cache
    m.write_config()
    try:
        yield m
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def tier_chain(release_vendor, tmp_path):
    """Builds a chain vendor -> mirrors (tierkit.build_chain's options), closed after the test."""
    built = []

    def build(**options) -> tierkit.Chain:
        built.append(tierkit.build_chain(release_vendor[0], tmp_path, **options))
        return built[-1]

    yield build
    for chain in built:
        chain.close()
