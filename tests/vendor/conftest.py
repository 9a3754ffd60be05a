"""One generated repository for the whole session, and a server on it per test."""

from __future__ import annotations

import pytest
from vendorkit import PASSWORD, USER

from updmirror.vendor.generate import VendorState, generate
from updmirror.vendor.server import VendorServer


@pytest.fixture(scope="session")
def vendor_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("vendor")
    report = generate(root, seed=7, size_mb=2)
    return root, report


@pytest.fixture(scope="session")
def vendor_state(vendor_root) -> VendorState:
    return VendorState.load(vendor_root[0])


@pytest.fixture
def server(vendor_root):
    srv = VendorServer(vendor_root[0] / "www", USER, PASSWORD).start()
    yield srv
    srv.stop()
