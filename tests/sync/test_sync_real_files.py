"""Syncs from upstreams made of the vendor's real files, with the default
configuration (no [verify] section: the pinned key is the real vendor's),
in the vendor's layout and in the flat layout of a vendor product's own
mirror, then served by the integrated server and compared byte for byte.

Only 7 of the 87 files the real 2021 index lists are in the fixtures, so the
upstream serves that index cut to their sections (tests/vendor_real.py).
"""

from __future__ import annotations

import pytest
from synckit import PASSWORD, USER, VENDOR_PATH, mirror_toml, served_index, sync

import vendor_real
from serverkit import ServerProcess, free_port, get
from updmirror import config
from updmirror.errors import ConfigError
from updmirror.eset.modules import modules
from updmirror.eset.trees import TREES, user_agent
from updmirror.eset.updatever import UpdateVer
from updmirror.store import Store
from updmirror.vendor.server import VendorServer

TREE = vendor_real.INDEX_TREE
SECTIONS = sorted(vendor_real.LISTED.values())


def file_paths(index: bytes) -> list[str]:
    return [m.path for m in modules(UpdateVer.parse(index), "http://mirror/" + VENDOR_PATH)]


@pytest.fixture
def product_mirror(tmp_path):
    """The real files in a product's mirror's flat layout, over HTTP with Basic auth."""
    www = tmp_path / "upper"
    seen = vendor_real.product_mirror(www, {TREE: SECTIONS})
    with VendorServer(www, USER, PASSWORD, product_mirror=True) as srv:
        yield srv, seen


def test_vendor_layout_of_real_files_is_published_and_served_byte_for_byte(tmp_path):
    www = tmp_path / "vendor"
    seen = vendor_real.vendor_layout(www, TREE, SECTIONS)
    with VendorServer(www, USER, PASSWORD) as srv:
        http_port = free_port()
        cfg = mirror_toml(tmp_path, srv.url, http_port=http_port)
        report = sync(cfg)
        assert report.ok, report.message
        assert report.files_fetched == len(SECTIONS)
        assert srv.count("/update.ver") == 0          # the vendor's layout: found at the first try
    # The vendor's form of file= is kept, so the whole index is served as upstream wrote it.
    assert served_index(tmp_path / "mirror") == seen[VENDOR_PATH]
    with ServerProcess(cfg, http_port):
        for path, data in seen.items():
            r = get(http_port, "/" + path.lstrip("/"))
            assert (r.status, r.body) == (200, data), path
        r = get(http_port, "/update.ver", headers={"User-Agent": user_agent(TREE)})
        assert (r.status, r.body) == (200, seen[VENDOR_PATH])


def test_product_mirror_of_real_files_is_detected_published_and_served_byte_for_byte(tmp_path, product_mirror):
    srv, seen = product_mirror
    http_port = free_port()
    cfg = mirror_toml(tmp_path, srv.url, http_port=http_port)
    report = sync(cfg)
    assert report.ok, report.message
    assert srv.count("/" + VENDOR_PATH, status=404) == 1 and srv.count("/update.ver", status=200) == 1
    upstream_index = seen[f"{TREE}:update.ver"]
    served = served_index(tmp_path / "mirror")
    # The vendor's bytes, except that each bare name is now a path from the host's root.
    expected = b"".join(line.replace(b"file=", b"file=/") if line.startswith(b"file=") else line
                        for line in upstream_index.splitlines(keepends=True))
    assert served == expected
    assert sorted(file_paths(served)) == sorted(p for p in seen if p.startswith("/"))
    with ServerProcess(cfg, http_port):
        for path, data in seen.items():
            if path.startswith("/"):
                r = get(http_port, path)
                assert (r.status, r.body) == (200, data), path
        for request in ("/update.ver", "//update.ver", "/" + VENDOR_PATH):
            r = get(http_port, request, headers={"User-Agent": user_agent(TREE)})
            assert (r.status, r.body) == (200, served), request


def test_a_product_mirror_is_asked_with_each_trees_user_agent(tmp_path):
    # One flat mirror, two products: v5's clients get another index than v9's, at the same URL.
    www = tmp_path / "upper"
    seen = vendor_real.product_mirror(www, {"v9": SECTIONS, "v5": ["RA2", "SSL2"]})
    with VendorServer(www, USER, PASSWORD, product_mirror=True) as srv:
        cfg = mirror_toml(tmp_path, srv.url, trees=("v5", "v9"))
        report = sync(cfg)
        assert report.ok, report.message
    store = tmp_path / "mirror"
    for tree in ("v5", "v9"):
        served = served_index(store, TREES[tree].index_paths()[0])
        assert served.replace(b"file=/", b"file=") == seen[f"{tree}:update.ver"], tree


def test_a_product_mirror_with_a_dll_index_resolves_bare_names_in_its_folder(tmp_path):
    www = tmp_path / "upper"
    seen = vendor_real.product_mirror(www, {"ep11": SECTIONS})
    with VendorServer(www, USER, PASSWORD, product_mirror=True) as srv:
        report = sync(mirror_toml(tmp_path, srv.url, trees=("ep11",)))
        assert report.ok, report.message
    snap = Store(tmp_path / "mirror").current()
    served = (snap.tree / TREES["ep11"].index_paths()[0]).read_bytes()
    assert sorted(file_paths(served)) == sorted(p for p in seen if p.startswith("/dll/"))
    for path in file_paths(served):
        assert (snap.tree / path.lstrip("/")).read_bytes() == seen[path]


def test_a_folder_written_by_a_products_mirror_is_an_upstream_too(tmp_path):
    # A shared folder the vendor's product fills: update.ver at its root, files beside it.
    folder = tmp_path / "share"
    seen = vendor_real.product_mirror(tmp_path / "unused", {TREE: SECTIONS})
    folder.mkdir()
    (folder / "update.ver").write_bytes(seen[f"{TREE}:update.ver"])
    for path, data in seen.items():
        if path.startswith("/"):
            (folder / path.lstrip("/")).write_bytes(data)
    report = sync(mirror_toml(tmp_path, str(folder), auth=False))
    assert report.ok, report.message
    assert [(i["layout"], i["upstream_url"]) for i in report.indexes] == [
        ("product-mirror", (folder / "update.ver").as_uri())]
    tree = Store(tmp_path / "mirror").current().tree
    for path in file_paths(served_index(tmp_path / "mirror")):
        assert (tree / path.lstrip("/")).read_bytes() == seen[path]


def test_the_next_sync_asks_the_product_mirror_first_and_conditionally(tmp_path, product_mirror):
    srv, _ = product_mirror
    cfg = mirror_toml(tmp_path, srv.url)
    assert sync(cfg).ok
    srv.reset_requests()
    report = sync(cfg)
    assert report.ok and report.published is None, report.message
    assert [(r.path, r.status) for r in srv.requests] == [("/update.ver", 304)]


@pytest.fixture
def mirror_a(tmp_path, product_mirror):
    """Mirror A, synced from the product's mirror and served by `updmirror serve`: its URL."""
    srv, _ = product_mirror
    a_port = free_port()
    a_cfg = mirror_toml(tmp_path, srv.url, http_port=a_port, name="a")
    assert sync(a_cfg).ok
    with ServerProcess(a_cfg, a_port):
        yield f"http://127.0.0.1:{a_port}/"


def test_tiers_do_not_pile_up_paths(tmp_path, product_mirror, mirror_a):
    """vendor's product mirror -> A (product-mirror layout upstream) -> B (replicating A)."""
    _, seen = product_mirror
    report = sync(mirror_toml(tmp_path, mirror_a, auth=False, name="b"))
    assert report.ok, report.message
    assert [i["layout"] for i in report.indexes] == ["vendor"]
    a_index, b_index = served_index(tmp_path / "a"), served_index(tmp_path / "b")
    assert b_index == a_index
    assert all(p.count("/") == 1 for p in file_paths(b_index))        # "/nod844C.nup", as at the top
    b_tree = Store(tmp_path / "b").current().tree
    for path in file_paths(b_index):
        assert (b_tree / path.lstrip("/")).read_bytes() == seen[path]


def test_auto_does_not_take_a_vendor_layout_mirror_lacking_the_tree_for_a_product_mirror(tmp_path, mirror_a):
    # A publishes v9 only; B wants v16. A answers B's v16 agent at /dll/update.ver with
    # v9's index, which names its files from the host's root: not a product's mirror.
    report = sync(mirror_toml(tmp_path, mirror_a, trees=("v16",), auth=False, name="b"))
    assert not report.ok
    assert "does not publish tree v16" in report.message and "eset_upd/v16/dll/update.ver" in report.message
    assert Store(tmp_path / "b").current() is None


def test_a_forced_vendor_layout_does_not_fall_back(tmp_path, product_mirror):
    srv, _ = product_mirror
    report = sync(mirror_toml(tmp_path, srv.url, upstream='layout = "vendor"'))
    assert not report.ok and "404" in report.message and VENDOR_PATH in report.message
    assert srv.count("/update.ver") == 0


def test_a_forced_product_mirror_layout_goes_straight_to_the_root(tmp_path, product_mirror):
    srv, _ = product_mirror
    report = sync(mirror_toml(tmp_path, srv.url, upstream='layout = "product-mirror"'))
    assert report.ok, report.message
    assert srv.count("/" + VENDOR_PATH) == 0


@pytest.mark.parametrize("upstream, mirror, error", [
    ('layout = "flat"', "", r"\[upstream\] layout: 'flat' is not one of: auto, vendor, product-mirror"),
    ('layout = "product-mirror"', 'channels = ["regular", "pre-release"]',
     r"\[upstream\] layout: a product's own mirror serves one channel"),
])
def test_layout_settings_are_checked(tmp_path, upstream, mirror, error):
    path = mirror_toml(tmp_path, "http://127.0.0.1:9/", upstream=upstream)
    path.write_text(path.read_text() + mirror + "\n")
    with pytest.raises(ConfigError, match=error):
        config.load(path)
