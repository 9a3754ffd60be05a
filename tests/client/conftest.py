"""One simulated vendor repository at two releases for the whole session."""

from __future__ import annotations

import shutil

import pytest
from clientkit import Releases

from updmirror.vendor.generate import VendorState, generate
from updmirror.vendor.publish import publish


@pytest.fixture(scope="session")
def releases(tmp_path_factory) -> Releases:
    """Release 1 and release 2 of one repository (ep11 and the legacy v5); read-only for tests."""
    root = tmp_path_factory.mktemp("client-vendor")
    first = root / "release1"
    generate(first, seed=21, size_mb=2, trees=("ep11", "v5"))
    second = root / "release2"
    shutil.copytree(first, second)
    publish(second)
    state = VendorState.load(first)
    return Releases(first, second, state.fingerprint, state.other_fingerprint[-16:])
