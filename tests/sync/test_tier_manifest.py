"""Mirrors replicating from mirrors plan from the upper mirror's manifest.

A chain vendor -> A -> B -> C over loopback, each mirror served by its own
`updmirror serve` with its own Basic credentials and synced by `updmirror
sync`: the lower mirrors keep unchanged files on the manifest's word without
reading them, still verify every new file against their own keys, and
record the chain of hops.
"""

from __future__ import annotations

import hashlib
import json
import urllib.error

import pytest

import tierkit
from updmirror.store.tiers import TIER_MANIFEST_PATH


@pytest.fixture
def chain(tier_chain):
    return tier_chain()


@pytest.fixture
def pair(tier_chain):
    return tier_chain(names=("A", "B"))


def test_lower_mirrors_keep_unchanged_files_on_the_manifest_without_reading_them(chain):
    first = chain.sync_all()
    assert first["A"]["upper_manifest"] is None            # the vendor has none: A starts the chain
    assert first["B"]["upper_manifest"] == chain["A"].url + TIER_MANIFEST_PATH
    assert first["C"]["upper_manifest"] == chain["B"].url + TIER_MANIFEST_PATH
    pool_b = chain["B"].store.pool
    inodes = {p: p.stat().st_ino for p in pool_b.rglob("*.nup")}

    chain.release()
    second = chain.sync_all()
    for name in "ABC":
        report = second[name]
        assert report["published"], (name, report["message"])
        assert report["files_fetched"] > 0 and report["files_reused"] > 0, report["message"]
        # Only the new files were read to hash them: every kept file on its recorded digest.
        assert (report["files_hashed"], report["bytes_hashed"]) == \
            (report["files_fetched"], report["bytes_fetched"]), name
    for name in "BC":
        assert second[name]["files_confirmed_by_manifest"] == second[name]["files_reused"] > 0
        assert "planned from http://127.0.0.1:" in second[name]["message"]
    assert second["B"]["bytes_fetched"] == second["A"]["bytes_fetched"]
    # A kept file is the same inode: not fetched, not rewritten.
    still = [p for p, ino in inodes.items() if p.exists() and p.stat().st_ino == ino]
    assert len(still) >= second["B"]["files_reused"]


def test_the_manifest_at_c_lists_three_hops_with_their_sync_times(chain):
    reports = chain.sync_all()
    manifest = tierkit.tier_manifest(chain["C"])
    assert manifest["mirror"] == "C" and manifest["snapshot"] == reports["C"]["published"]
    (index,) = manifest["indexes"]
    assert index["path"] == tierkit.INDEX
    hops = index["hops"]
    assert [h["name"] for h in hops] == ["A", "B", "C"]
    times = [h["synced_at"] for h in hops]
    assert times == sorted(times)
    for name, hop in zip("ABC", hops, strict=True):
        assert reports[name]["started"] <= hop["synced_at"] <= reports[name]["finished"]
        assert hop["synced_at"] <= hop["published_at"] <= reports[name]["finished"]
    # Every file the index lists, with the digest of the bytes C serves.
    snap = chain["C"].store.current()
    for path, entry in manifest["files"].items():
        data = (snap.tree / path.lstrip("/")).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (entry["size"], entry["sha256"]), path
    text = json.dumps(manifest)
    for tier in chain.tiers:
        assert tier.upstream_password not in text and tier.password not in text
    assert "http" not in text          # no upstream URL, with or without credentials


def test_the_manifest_asks_for_credentials_like_every_file(pair):
    pair.sync_all()
    stranger = tierkit.Tier("X", pair["A"].root.parent / "X", "http://127.0.0.1:9/", "u", "p",
                            "0" * 40, "0" * 16)
    stranger.port, stranger.user, stranger.password = pair["A"].port, "nobody", "wrong"
    with pytest.raises(urllib.error.HTTPError) as refused:
        tierkit.tier_manifest(stranger)
    assert refused.value.code == 401


def test_an_unchanged_lower_sync_refreshes_its_hops_from_the_upper_manifest(pair):
    pair.sync_all()
    before = tierkit.tier_manifest(pair["B"])["indexes"][0]["hops"]
    again = pair.sync_all()
    assert again["A"]["published"] is None and again["B"]["published"] is None
    after = tierkit.tier_manifest(pair["B"])["indexes"][0]["hops"]
    assert [h["name"] for h in after] == ["A", "B"]
    # Both confirmed anew (run records), though neither published a snapshot.
    assert after[0]["synced_at"] > before[0]["synced_at"] and after[1]["synced_at"] > before[1]["synced_at"]
    assert after[1]["published_at"] == before[1]["published_at"]


def _module(tier: tierkit.Tier) -> tuple[str, object]:
    """A module file of `tier`'s snapshot (a big one: its payload is in the middle)."""
    snap = tier.store.current()
    listed = json.loads((snap.tree / TIER_MANIFEST_PATH).read_text())["files"]
    path = max(listed, key=lambda p: listed[p]["size"])
    return path, snap


def _tamper(tier: tierkit.Tier, kind: str) -> str:
    """Change what upper mirror `tier` serves, as a broken or lying upper would; the path."""
    tier.stop()     # its server keeps small files in memory
    path, snap = _module(tier)
    manifest_file = snap.tree / TIER_MANIFEST_PATH
    manifest = json.loads(manifest_file.read_text())
    pool_file = tier.store.pool_file(path)
    if kind in ("bytes", "bytes-and-manifest"):
        data = bytearray(pool_file.read_bytes())
        data[len(data) // 2] ^= 0xFF
        pool_file.write_bytes(bytes(data))            # the same inode: the snapshot serves it
        if kind == "bytes-and-manifest":
            manifest["files"][path]["sha256"] = hashlib.sha256(data).hexdigest()
    elif kind == "size":
        manifest["files"][path]["size"] += 1
    elif kind == "missing":
        del manifest["files"][path]
    elif kind == "index":
        manifest["indexes"][0]["sha256"] = "0" * 64     # as if it described another index
    manifest_file.unlink()
    manifest_file.write_text(json.dumps(manifest))
    tier.serve()
    return path


def test_a_file_changed_at_the_upper_mirror_but_not_in_its_manifest_is_refused(pair):
    pair["A"].sync()
    path = _tamper(pair["A"], "bytes")
    report = pair["B"].sync(ok=False)
    assert path in report["message"] and "SHA-256" in report["message"]
    assert pair["A"].url + TIER_MANIFEST_PATH in report["message"]
    assert pair["B"].store.current() is None


def test_a_lying_upper_mirror_is_caught_by_the_lower_mirrors_own_checks(pair):
    # The manifest vouches for the changed bytes: the inner CRC and signature still refuse them.
    pair["A"].sync()
    path = _tamper(pair["A"], "bytes-and-manifest")
    report = pair["B"].sync(ok=False)
    assert path in report["message"] and "SHA-256" not in report["message"]
    assert any(word in report["message"] for word in ("CRC", "signature")), report["message"]
    assert pair["B"].store.current() is None


@pytest.mark.parametrize("kind", ["size", "missing"])
def test_a_manifest_that_disagrees_with_the_index_names_the_file_and_url(pair, kind):
    pair["A"].sync()
    path = _tamper(pair["A"], kind)
    report = pair["B"].sync(ok=False)
    assert path in report["message"] and pair["A"].url + TIER_MANIFEST_PATH in report["message"]
    assert pair["B"].store.current() is None


def test_a_manifest_of_another_index_than_served_is_refused_after_one_more_look(pair):
    # Once is a publish between the two requests (read again); twice is a broken upper mirror.
    pair["A"].sync()
    _tamper(pair["A"], "index")
    report = pair["B"].sync(ok=False)
    assert pair["A"].url + TIER_MANIFEST_PATH in report["message"]
    assert pair["A"].url + tierkit.INDEX in report["message"] and "twice in a row" in report["message"]
    assert pair["B"].store.current() is None


def test_a_store_from_before_digests_hashes_its_files_once(tier_chain):
    c = tier_chain(names=("A",))
    a = c["A"]
    a.sync()
    snap = a.store.current()
    manifest_file = snap.dir / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    del manifest["sha256"]                      # as an older updmirror wrote it
    manifest_file.write_text(json.dumps(manifest))
    c.release()
    upgraded = a.sync()
    assert upgraded["files_hashed"] == upgraded["files_fetched"] + upgraded["files_reused"]
    c.release()
    after = a.sync()
    assert (after["files_hashed"], after["bytes_hashed"]) == (after["files_fetched"], after["bytes_fetched"])
