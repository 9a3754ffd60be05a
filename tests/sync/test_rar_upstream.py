"""An upstream that serves its index RAR-wrapped, and the start-up check for the extractor.

The compressed archive served here is WinRAR's (tests/rarkit.py); its text is
no index, so these tests prove that a sync decompresses what upstream sent
and hands the text to the index parser, not that a vendor's RAR index is
read. The real 2021 index is served RAR-wrapped in the stored form (the only
one we can write) to prove the rest of the path: published as plain text.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from synckit import PASSWORD, USER, VENDOR_PATH, mirror_toml, served_index, sync

import vendor_real
from rarkit import archive, path_without_extractors, require_extractor
from serverkit import SRC
from updmirror.store import Store
from updmirror.vendor.server import VendorServer

SECTIONS = ["RA2", "SSL2"]
HINT = "install a RAR extractor: apt-get install libarchive-tools (bsdtar)"


def cli(command: str, cfg: Path, tmp: Path, *, extractor: bool) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=SRC)
    if not extractor:
        env["PATH"] = path_without_extractors(tmp)
    return subprocess.run([sys.executable, "-m", "updmirror", command, "-c", str(cfg)], env=env,
                          capture_output=True, text=True, timeout=60)


def test_a_compressed_rar_index_from_upstream_is_decompressed_by_the_extractor(tmp_path):
    require_extractor()
    (tmp_path / "www" / VENDOR_PATH).parent.mkdir(parents=True)
    (tmp_path / "www" / VENDOR_PATH).write_bytes(archive("rar3-solid.rar"))
    with VendorServer(tmp_path / "www", USER, PASSWORD) as srv:
        report = sync(mirror_toml(tmp_path, srv.url))
    assert not report.ok
    assert f"{VENDOR_PATH}, line 1: text before the first [SECTION]; not an update.ver" in report.message


def test_a_first_sync_without_an_extractor_says_which_package_to_install(tmp_path):
    (tmp_path / "www" / VENDOR_PATH).parent.mkdir(parents=True)
    (tmp_path / "www" / VENDOR_PATH).write_bytes(archive("rar3-solid.rar"))
    with VendorServer(tmp_path / "www", USER, PASSWORD) as srv:
        done = cli("sync", mirror_toml(tmp_path, srv.url), tmp_path, extractor=False)
    assert done.returncode == 1
    assert f"{VENDOR_PATH} is RAR-compressed and no RAR extractor is installed; {HINT}" in done.stderr
    assert PASSWORD not in done.stderr + done.stdout


@pytest.fixture
def synced_from_rar(tmp_path):
    """A mirror whose last sync read the real index RAR-wrapped (stored form)."""
    www = tmp_path / "www"
    seen = vendor_real.vendor_layout(www, vendor_real.INDEX_TREE, SECTIONS)
    with VendorServer(www, USER, PASSWORD, rar_index=True) as srv:
        cfg = mirror_toml(tmp_path, srv.url)
        report = sync(cfg)
        assert report.ok, report.message
        srv.reset_requests()
        yield srv, cfg, seen


def test_a_rar_wrapped_index_is_published_as_plain_text_and_remembered(tmp_path, synced_from_rar):
    srv, cfg, seen = synced_from_rar
    assert served_index(tmp_path / "mirror") == seen[VENDOR_PATH]
    (state,) = Store(tmp_path / "mirror").load_upstream_state().values()
    assert (state["format"], state["layout"], state["url"]) == ("rar", "vendor", srv.url + VENDOR_PATH)


@pytest.mark.parametrize("command", ["sync", "run"])
def test_start_up_refuses_without_an_extractor_when_the_upstream_serves_rar(tmp_path, synced_from_rar, command):
    srv, cfg, _ = synced_from_rar
    done = cli(command, cfg, tmp_path, extractor=False)
    assert done.returncode == 1
    assert done.stderr == (f"updmirror: error: the upstream served {srv.url}{VENDOR_PATH} RAR-wrapped at the "
                           f"last sync and no RAR extractor is installed; {HINT}\n")
    assert srv.requests == []            # refused before asking upstream anything


def test_start_up_passes_with_an_extractor(tmp_path, synced_from_rar):
    require_extractor()
    srv, cfg, _ = synced_from_rar
    done = cli("sync", cfg, tmp_path, extractor=True)
    assert done.returncode == 0, done.stderr
    assert "mirror is current" in done.stdout


def test_a_plain_upstream_needs_no_extractor(tmp_path):
    www = tmp_path / "www"
    vendor_real.vendor_layout(www, vendor_real.INDEX_TREE, SECTIONS)
    with VendorServer(www, USER, PASSWORD) as srv:
        cfg = mirror_toml(tmp_path, srv.url)
        assert sync(cfg).ok
        done = cli("sync", cfg, tmp_path, extractor=False)
    assert done.returncode == 0, done.stderr
