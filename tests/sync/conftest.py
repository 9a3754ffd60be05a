"""A simulated vendor over real HTTP on loopback, and a mirror configured for it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from synckit import PASSWORD, USER, Setup

from updmirror.vendor.generate import VendorState, generate
from updmirror.vendor.server import VendorServer


@pytest.fixture(scope="session")
def pristine_vendor(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("vendor-pristine")
    generate(root, seed=11, size_mb=3, trees=("ep11", "v16", "v5"))
    return root


@pytest.fixture
def setup(pristine_vendor, tmp_path) -> Setup:
    vendor_root = tmp_path / "vendor"
    shutil.copytree(pristine_vendor, vendor_root)
    server = VendorServer(vendor_root / "www", USER, PASSWORD).start()
    state = VendorState.load(vendor_root)
    s = Setup(vendor_root, server, tmp_path / "store", tmp_path / "mirror.toml",
              state.fingerprint, state.other_fingerprint[-16:])
    s.write_config()
    yield s
    server.stop()
