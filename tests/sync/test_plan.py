from pathlib import Path

import pytest

from updmirror.errors import FormatError
from updmirror.eset.modules import modules
from updmirror.eset.updatever import UpdateVer
from updmirror.sync.plan import IndexPlan, drop_share, plan_files, rewrite_index

URL = "http://vendor.example/eset_upd/ep11/dll/update.ver"
INDEX = (b"[HOSTS]\r\nOther=1@http://um01.eset.com/eset_upd/\r\n"
         b"[LINKS]\r\nx=1\r\n"
         b"[PERSEUS0]\r\nversionid=10\r\nplatform=x64\r\nfile=/p/m/a.nup\r\nsize=3\r\n"
         b"[LANG0]\r\nplatform=x64\r\nlanguage=1049\r\nfile=b.nup\r\nsize=4\r\n"
         b"[SETUP]\r\nx=1")


def plan(index: bytes = INDEX, pick=lambda m: True) -> IndexPlan:
    doc = UpdateVer.parse(index)
    p = IndexPlan("ep11", "regular", "eset_upd/ep11/dll/update.ver", URL, index=doc)
    p.modules = [m for m in modules(doc, URL) if pick(m)]
    return p


def test_rewritten_index_drops_upstream_hosts_and_unselected_modules():
    p = plan(pick=lambda m: m.language is None)
    out = rewrite_index(p.index, p.modules)
    assert out == (b"[PERSEUS0]\r\nversionid=10\r\nplatform=x64\r\nfile=/p/m/a.nup\r\nsize=3\r\n"
                   b"[SETUP]\r\nx=1\r\n")


def test_rewritten_index_makes_bare_names_host_relative():
    p = plan()
    out = rewrite_index(p.index, p.modules)
    assert p.index.to_bytes() == INDEX        # the upstream index is left as it was read
    assert b"file=/eset_upd/ep11/dll/b.nup\r\n" in out
    again = UpdateVer.parse(out)
    assert [m.path for m in modules(again, "http://mirror:2221/eset_upd/ep11/dll/update.ver")] == \
        ["/p/m/a.nup", "/eset_upd/ep11/dll/b.nup"]


def test_files_already_verified_in_the_pool_are_reused(tmp_path):
    pool = lambda path: tmp_path / path.lstrip("/")  # noqa: E731
    (tmp_path / "p/m").mkdir(parents=True)
    (tmp_path / "p/m/a.nup").write_bytes(b"abc")
    files = plan_files([plan()], pool)
    assert [m.path for m in files.reuse] == ["/p/m/a.nup"]
    assert [m.path for m in files.fetch] == ["/eset_upd/ep11/dll/b.nup"]
    assert files.fetch_bytes == 4


def test_a_pool_file_of_the_wrong_size_is_fetched_again(tmp_path):
    pool = lambda path: tmp_path / path.lstrip("/")  # noqa: E731
    (tmp_path / "p/m").mkdir(parents=True)
    (tmp_path / "p/m/a.nup").write_bytes(b"abcdef")
    assert len(plan_files([plan()], pool).fetch) == 2


def test_a_file_shared_by_channels_is_fetched_once_and_sizes_must_agree(tmp_path):
    pool = lambda path: Path("/nonexistent") / path.lstrip("/")  # noqa: E731
    assert len(plan_files([plan(), plan()], pool).fetch) == 2
    other = plan(INDEX.replace(b"size=3", b"size=5"))
    with pytest.raises(FormatError, match="size"):
        plan_files([plan(), other], pool)


def test_drop_share():
    assert drop_share(["a", "b", "c", "d"], ["a", "b", "x"]) == 0.5
    assert drop_share([], ["a"]) == 0.0
