"""The generated repository: layout, indexes, files, signatures, reproducibility."""

from __future__ import annotations

import hashlib
import random
import re
import statistics

import pytest

from updmirror.errors import SignatureError
from updmirror.eset import openpgp
from updmirror.eset.modules import is_module_section, modules
from updmirror.eset.nup import inspect, verify
from updmirror.eset.trees import CHANNELS, TREES
from updmirror.eset.updatever import UpdateVer
from updmirror.vendor import VendorError
from updmirror.vendor.generate import generate

VENDOR_KEY_ORDER = ["version", "versionid", "build", "type", "category", "level", "base", "date",
                    "platform", "group", "buildregname", "language", "file", "size"]
NAME_RE = {
    "ep11": re.compile(r"^/endpointwindowslatest-rel-sta/mod_\d{3}_[a-z0-9]+(_\d{4})?_\d+/"
                       r"em\d{3}_(32|64|a64)_[ln]\d\.dll\.nup$"),
    "v16": re.compile(r"^/v16-dll-rel-sta/mod_\d{3}_[a-z0-9]+(_\d{4})?_\d+/em\d{3}_(32|64|a64)_[ln]\d\.dll\.nup$"),
    "v5": re.compile(r"^/v5-rel-sta/mod_\d{3}_[a-z0-9]+(_\d{4})?_\d+/em\d{3}_(32|64)_[ln]\d\.nup$"),
}


def _index(root, path) -> UpdateVer:
    return UpdateVer.parse((root / "www" / path).read_bytes(), path)


def _tree_indexes(tree):
    for channel in CHANNELS:
        for path in TREES[tree].index_paths(channel):
            yield channel, path


def test_every_tree_has_all_three_channels_with_about_150_module_sections(vendor_root):
    root, report = vendor_root
    assert {"ep11", "v16", "v5"} == set(report.trees)
    assert TREES["ep11"].has_dll and TREES["v16"].has_dll and not TREES["v5"].has_dll
    seen = 0
    for tree in report.trees:
        for _channel, path in _tree_indexes(tree):
            doc = _index(root, path)
            count = sum(1 for s in doc.sections if is_module_section(s))
            low = 120 if TREES[tree].has_dll else 80   # the legacy tree has fewer module types
            assert low <= count <= 220, (path, count)
            assert report.indexes[path] == count
            seen += 1
    assert seen == 9


def test_indexes_are_crlf_with_vendor_sections_and_key_order(vendor_root):
    root, report = vendor_root
    for tree in report.trees:
        raw = (root / "www" / TREES[tree].index_paths("regular")[0]).read_bytes()
        assert raw.count(b"\n") == raw.count(b"\r\n") > 1000
        doc = UpdateVer.parse(raw)
        assert doc.to_bytes() == raw
        names = [s.name for s in doc.sections]
        for wanted in ("HOSTS", "Expire", "SETUP", "PCUVER"):
            assert wanted in names
        assert any(n.startswith("PICO_") for n in names) and any(n.startswith("HASH") for n in names)
        hosts = doc.section("HOSTS")
        for key in ("Other", "Prerelease-other", "Deferred-other"):
            assert re.fullmatch(r"\d+@http://\S+/(, \d+@http://\S+/)*", hosts[key]), hosts[key]
        mods = [s for s in doc.sections if is_module_section(s)]
        for s in mods:
            keys = s.keys()
            assert keys == [k for k in VENDOR_KEY_ORDER if k in keys], (s.name, keys)
            assert s.raw("buildregname").startswith('"')
            # "1207.1 (20210421)" and "1425T (20210806)" are real too.
            assert re.fullmatch(r"\d+(\.\d|T)? \(\d{8}\)", s["version"])
            assert re.fullmatch(r"\d\d\.\d\d\.\d{4}", s["date"])
            if s.name.startswith("CONTINUOUS_"):
                assert "level" not in s
            elif s["level"] == "0":
                assert s["base"] == "268435456"
            else:
                assert s["base"] != "268435456"
        platforms = {s["platform"] for s in mods}
        assert {"x86", "x64"} <= platforms
        if TREES[tree].has_dll:
            assert "arm64" in platforms
        assert {s.get("language") for s in mods} >= {"1033", "1049", "1031", "1058"}
        assert {s.get("level") for s in mods} >= {"0", "1", "2"}
        assert any(s.name.startswith("CONTINUOUS_") for s in mods)
        assert len({s["type"].removesuffix("64").removesuffix("arm") for s in mods}) >= 20


def test_files_follow_the_vendor_naming_and_match_their_sizes(vendor_root):
    root, report = vendor_root
    www = root / "www"
    for tree in report.trees:
        for _channel, path in _tree_indexes(tree):
            doc = _index(root, path)
            for m in modules(doc, f"http://update.eset.com/{path}"):
                assert NAME_RE[tree].match(m.path), m.path
                assert m.size is None or (www / m.path.lstrip("/")).stat().st_size == m.size


def test_a_sample_of_files_verifies_against_the_printed_fingerprint(vendor_root, vendor_state):
    root, report = vendor_root
    assert re.fullmatch(r"[0-9A-F]{40}", report.fingerprint)
    assert report.fingerprint in report.summary()
    # The armored public key outside www/ is the key with that fingerprint.
    published = openpgp.load_key_file(root / "vendor-key.asc")
    assert published[0].fingerprint == report.fingerprint
    assert not (root / "www" / "vendor-key.pem").exists()
    www = root / "www"
    doc = _index(root, TREES["ep11"].index_paths("regular")[0])
    mods = modules(doc, "http://update.eset.com/eset_upd/ep11/dll/update.ver")
    for m in random.Random(1).sample(mods, 25):
        info = verify(www / m.path.lstrip("/"), m.path, [report.fingerprint])
        assert info.signed_by == report.fingerprint
        assert info.embedded_key_fingerprint == report.fingerprint
        assert info.update_info["name"] == m.section
        assert info.update_info["build"] == str(m.build)
        assert info.literal_name == m.path.rsplit("/", 1)[1]
        assert re.fullmatch(r'"em\d{3}_(32|64|a64)\.dat"', info.update_info["filename"])
        # The second signature is DSA by a key the file does not carry, like the vendor's.
        algos = {s.algorithm: s for s in info.signatures}
        assert algos["RSA"].version == 3 and algos["RSA"].verified
        assert algos["DSA"].key_id == vendor_state.other_fingerprint[-16:]
        assert not algos["DSA"].verified
    with pytest.raises(Exception, match="no signature by a pinned key"):
        verify(www / mods[0].path.lstrip("/"), mods[0].path, ["0" * 40])


def test_pre_release_is_ahead_and_deferred_behind(vendor_root):
    root, _ = vendor_root
    for tree in ("ep11", "v16", "v5"):
        top = {}
        for channel, path in _tree_indexes(tree):
            doc = _index(root, path)
            top[channel] = max(int(s["versionid"]) for s in doc.sections if is_module_section(s))
        assert top["deferred"] < top["regular"] < top["pre-release"], (tree, top)


def test_size_is_spread_with_realistic_skew(vendor_root):
    root, report = vendor_root
    www = root / "www"
    sizes = sorted(p.stat().st_size for p in www.rglob("*.nup"))
    assert len(sizes) == report.files
    assert report.bytes == sum(sizes)
    # 2 MiB asked; the smallest files cannot shrink below a .nup's fixed overhead.
    assert 2 * 2**20 * 0.9 <= sum(sizes) <= 2 * 2**20 * 1.5
    assert sizes[-1] > 20 * statistics.median(sizes)


def _digest_tree(root):
    www = root / "www"
    return {str(p.relative_to(www)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(www.rglob("*")) if p.is_file()}


def test_same_seed_gives_the_same_bytes(tmp_path, vendor_root):
    # DSA signatures included: their nonce comes from the key and the digest.
    a = generate(tmp_path / "a", seed=7, size_mb=2)
    c = generate(tmp_path / "c", seed=8, size_mb=0.5, trees=("ep11",))
    assert a.fingerprint == vendor_root[1].fingerprint != c.fingerprint
    da, db = _digest_tree(tmp_path / "a"), _digest_tree(vendor_root[0])
    assert da == db
    index = "eset_upd/ep11/dll/update.ver"
    assert da[index] != _digest_tree(tmp_path / "c")[index]


def test_without_dsa_nothing_is_signed_by_the_legacy_key(tmp_path):
    root = tmp_path / "nodsa"
    generate(root, seed=7, size_mb=0.3, trees=("v5",), dsa=False)
    for m in modules(_index(root, "eset_upd/v5/update.ver"), "http://h/eset_upd/v5/update.ver"):
        info = inspect(root / "www" / m.path.lstrip("/"), m.path)
        assert [s.algorithm for s in info.signatures] == ["RSA"], m.path


def test_generate_refuses_a_folder_that_is_not_a_vendor_root(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(VendorError, match="not empty"):
        generate(tmp_path, size_mb=0.1, trees=("v5",))
    assert (tmp_path / "precious.txt").read_text() == "keep me"
    with pytest.raises(VendorError, match="unknown tree"):
        generate(tmp_path / "new", trees=("v99",))


def test_nup_files_carry_their_index_section(vendor_root):
    root, _ = vendor_root
    doc = _index(root, "eset_upd/v5/update.ver")
    for s in [s for s in doc.sections if is_module_section(s)][:10]:
        info = inspect(root / "www" / s["file"].lstrip("/"), s["file"])
        for key, value in s.items():
            if key not in ("file", "size"):
                assert info.update_info[key] == (f'"{value}"' if key == "buildregname" else value)


def test_legacy_tree_lists_dsa_only_modules_of_2010_like_the_vendor(vendor_root, vendor_state):
    root, report = vendor_root
    path = "eset_upd/v5/update.ver"
    dsa_only = []
    for m in modules(_index(root, path), f"http://h/{path}"):
        target = root / "www" / m.path.lstrip("/")
        info = inspect(target, m.path)
        if info.embedded_key_fingerprint is None:
            dsa_only.append(m.section)
            assert [(s.algorithm, s.key_id) for s in info.signatures] == [
                ("DSA", vendor_state.other_fingerprint[-16:])]
            assert info.literal_name == "NOD32.LIC" and m.version.endswith("(20100728)")
            with pytest.raises(SignatureError, match="public key not available"):
                verify(target, m.path, [report.fingerprint])
    # Like SELFDEFENSE640..642 in the real 2021 index; the dll trees have none (a guess).
    assert sorted(dsa_only) == ["SELFDEFENSE0", "SELFDEFENSE1", "SELFDEFENSE2",
                                "SELFDEFENSE640", "SELFDEFENSE641", "SELFDEFENSE642"]
    dll = "eset_upd/ep11/dll/update.ver"
    assert not any("selfdefense" in m.type for m in modules(_index(root, dll), f"http://h/{dll}"))


def test_some_delta_sections_have_no_size_like_the_vendors(vendor_root):
    root, _ = vendor_root
    sizeless = []
    for path in ("eset_upd/v5/update.ver", "eset_upd/ep11/dll/update.ver"):
        for m in modules(_index(root, path), f"http://h/{path}"):
            if m.size is None:
                sizeless.append(m)
                assert m.level in (1, 2), m.section
                assert inspect(root / "www" / m.path.lstrip("/"), m.path).filesize > 0
    assert 1 <= len(sizeless) <= 20
