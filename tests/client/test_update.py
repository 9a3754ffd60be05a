"""The reference client against real servers on loopback: what it installs, and how little it fetches."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from clientkit import Mirror, endpoint, source, state, update

import vendor_real
from updmirror.client import (
    Client,
    Destination,
    Endpoint,
    Installed,
    UpdateFailed,
    installed,
    modules_for,
    plan_update,
)
from updmirror.config import VENDOR_FINGERPRINT
from updmirror.eset import nup
from updmirror.eset.modules import modules
from updmirror.eset.updatever import UpdateVer

REAL = vendor_real.FOLDER


def expected(releases_root: Path, index: str, platform: str = "x64", language: int | None = 1033):
    """What a new client of `platform` should hold after installing from that index: the plan's chains."""
    body = (releases_root / "www" / index).read_bytes()
    wanted = modules_for(modules(UpdateVer.parse(body), "http://v/" + index), platform, language)
    return plan_update(wanted, [])


def test_a_new_folder_gets_its_platforms_modules_verified_and_installed(releases, tmp_path):
    dest = tmp_path / "av"
    with releases.serve(releases.second) as vendor:
        result = update(dest, [source(vendor.url)], endpoint(releases))
    plan = expected(releases.second, "eset_upd/ep11/dll/update.ver")
    assert result.status == "updated" and result.failures == []
    assert result.downloaded_files == len(plan.download) == result.installed_files
    now = installed(dest)
    assert {m.key for m in now.modules} == {h.key for h in plan.installed()}
    assert all(m.platform in ("x64", None) and m.language in (1033, None) for m in now.modules)
    assert (now.tree, now.platform, now.version) == ("ep11", "x64", result.version)
    for m in now.modules:   # what is installed is what the vendor signed
        nup.verify(now.module_file(m.key), m.key, [releases.fingerprint])
    assert (dest / "current").is_symlink() and not (dest / "staging").exists()
    assert [p.name for p in (dest / "versions").iterdir()] == [now.id]


def test_after_a_release_only_the_chain_from_the_held_builds_is_downloaded(releases, tmp_path):
    dest = tmp_path / "av"
    with releases.serve(releases.first) as old:
        first = update(dest, [source(old.url)], endpoint(releases))
    inodes = {m.key: installed(dest).module_file(m.key).stat().st_ino for m in installed(dest).modules}
    with releases.serve(releases.second) as new:
        second = update(dest, [source(new.url)], endpoint(releases))
        fetched = [r.path for r in new.requests if r.path.endswith(".nup")]
    assert second.status == "updated" and second.previous_version == first.version < second.version
    assert 0 < second.downloaded_files < first.downloaded_files / 3
    assert len(fetched) == second.downloaded_files
    assert second.downloaded_bytes < first.downloaded_bytes / 4
    now = installed(dest)
    kept = [m for m in now.modules if m.key in inodes]
    assert len(kept) == second.kept_files > 0
    # Kept files are the same files (hard links), not copies.
    assert all(now.module_file(m.key).stat().st_ino == inodes[m.key] for m in kept)
    assert len(now.modules) == second.kept_files + second.downloaded_files


def test_an_unchanged_index_is_a_conditional_request_and_nothing_more(releases, tmp_path):
    dest = tmp_path / "av"
    with releases.serve(releases.second) as vendor:
        update(dest, [source(vendor.url)], endpoint(releases))
        before = state(dest)
        vendor.reset_requests()
        again = update(dest, [source(vendor.url)], endpoint(releases))
        seen = vendor.requests
    assert again.status == "current" and state(dest) == before
    assert not [r for r in seen if r.path.endswith(".nup")]
    assert [r.status for r in seen if r.path.endswith("eset_upd/ep11/dll/update.ver")] == [304]


def test_a_legacy_tree_reads_update_ver_not_dll(releases, tmp_path):
    with releases.serve(releases.second) as vendor:
        result = update(tmp_path / "v5", [source(vendor.url)], endpoint(releases, "v5", "x86"))
        asked = {r.path for r in vendor.requests if r.path.endswith("update.ver")}
    assert result.status == "updated" and installed(tmp_path / "v5").tree == "v5"
    assert asked == {"/update.ver", "/eset_upd/v5/update.ver"}     # its root index, then the vendor's path


def test_a_module_signed_only_by_the_legacy_key_is_taken_only_when_that_key_is_listed(releases, tmp_path):
    """The v5 tree lists modules of 2010 signed only by the vendor's old DSA key (as real indexes do)."""
    with releases.serve(releases.second) as vendor:
        taken = update(tmp_path / "taken", [source(vendor.url)], endpoint(releases, "v5", "x86"))
        with pytest.raises(UpdateFailed, match="no signature by a pinned key verifies") as refused:
            update(tmp_path / "strict", [source(vendor.url)], endpoint(releases, "v5", "x86", legacy_key_ids=()))
    assert taken.status == "updated" and taken.unchecked_files > 0
    assert taken.unchecked_files < taken.downloaded_files       # every other file is fully checked
    assert "selfdefense" in str(refused.value) and installed(tmp_path / "strict").version is None


def test_through_a_mirror_the_user_agent_chooses_the_index(releases, tmp_path):
    with releases.serve(releases.second) as vendor, Mirror(tmp_path / "m", vendor.url, releases.fingerprint,
                                                                     releases.legacy_key_id) as m:
        ep11 = update(tmp_path / "ep11", [source(m.url, user=None, password=None)], endpoint(releases))
        v5 = update(tmp_path / "v5", [source(m.url, user=None, password=None)], endpoint(releases, "v5", "x86"))
    want_ep11 = expected(releases.second, "eset_upd/ep11/dll/update.ver")
    want_v5 = expected(releases.second, "eset_upd/v5/update.ver", "x86")
    assert {m.key for m in installed(tmp_path / "ep11").modules} == {h.key for h in want_ep11.installed()}
    assert {m.key for m in installed(tmp_path / "v5").modules} == {h.key for h in want_v5.installed()}
    assert ep11.source == v5.source == m.url and not ep11.failures and not v5.failures


def test_a_genuine_vendor_delta_installs_from_a_product_mirror_folder(tmp_path):
    """Real bytes: the 2021 index and RA2 (nod844C.nup), signed by the vendor's RSA key, pinned."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    real = UpdateVer.parse((REAL / "update.ver").read_bytes())
    keep = {"RA0", "RA1", "RA2"}
    real.remove_sections({s.name for s in real.sections} - keep)
    (folder / "update.ver").write_bytes(real.to_bytes())
    (folder / "nod844C.nup").write_bytes((REAL / "nod844C.nup").read_bytes())
    # A client that holds RA at build 1033 (RA0 + RA1): the next step is RA2 alone.
    mods = {m.section: m for m in modules(real, folder.as_uri() + "/update.ver")}
    dest = Destination(tmp_path / "av")
    held = plan_update([mods["RA0"], mods["RA1"]], []).installed()
    placeholders = {}
    for h in held:
        placeholders[h.key] = tmp_path / h.key
        placeholders[h.key].write_bytes(b"held")
    dest.install(Installed(tree="v9", platform="x86", language=None, version=1021, modules=held),
                 b"", placeholders)

    e = Endpoint("v9", "x86", None, pinned=(VENDOR_FINGERPRINT,))
    result = update(dest.root, [source(str(folder), user=None, password=None)], e)
    assert result.status == "updated" and result.downloaded_files == 1 and result.kept_files == 2
    now = installed(dest.root)
    assert [m.section for m in now.modules] == ["RA0", "RA1", "RA2"] and now.version == 1022
    assert now.module_file(now.modules[2].key).read_bytes() == (REAL / "nod844C.nup").read_bytes()


def test_progress_is_reported_for_every_byte_and_file(releases, tmp_path):
    class Seen:
        def __init__(self):
            self.plans, self.bytes, self.files = [], 0, []

        def planned(self, src, files, total):
            self.plans.append((src, files, total))

        def advance(self, n):
            self.bytes += n

        def file_done(self, name):
            self.files.append(name)

    seen = Seen()
    with releases.serve(releases.second) as vendor:
        result = update(tmp_path / "av", [source(vendor.url)], endpoint(releases), progress=seen)
    assert seen.plans == [(vendor.url.rstrip("/"), result.downloaded_files, result.downloaded_bytes)]
    assert seen.bytes == result.downloaded_bytes and len(seen.files) == result.downloaded_files


def test_many_endpoints_in_one_process_share_one_pool_and_no_thread_each(releases, tmp_path):
    count = 24
    peak = 0

    async def go(url):
        nonlocal peak
        eps = [endpoint(releases, platform=("x64", "x86")[i % 2]) for i in range(count)]
        async with Client(max_connections=4, connect_timeout=2, stall_timeout=5) as client:
            async def watch():
                nonlocal peak
                while True:
                    peak = max(peak, threading.active_count())
                    await asyncio.sleep(0.01)

            watcher = asyncio.ensure_future(watch())
            results = await asyncio.gather(*(client.update(tmp_path / f"c{i}", [source(url)], e)
                                             for i, e in enumerate(eps)))
            watcher.cancel()
            return results, len(client._fetchers)

    with releases.serve(releases.second) as vendor:
        results, fetchers = asyncio.run(go(vendor.url))
    assert all(r.status == "updated" for r in results)
    assert fetchers == 2                      # one per User-Agent (32 and 64 bit), not one per client
    assert peak < 20, f"{peak} threads for {count} clients"
