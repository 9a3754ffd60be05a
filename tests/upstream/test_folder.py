"""FolderUpstream: the same contract as over HTTP, from a folder on disk."""

import asyncio
import os

import pytest

from updmirror.upstream import (
    FolderUpstream,
    NotFoundError,
    TooLargeError,
    UpstreamConfig,
    UpstreamError,
    open_upstream,
)

INDEX = b"[ENGINE2]\r\nversion=1\r\n"
FILE = bytes(range(256)) * 8192  # 2 MiB: more than one read step


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "share"
    (root / "eset_upd" / "ep11").mkdir(parents=True)
    (root / "eset_upd" / "ep11" / "update.ver").write_bytes(INDEX)
    (root / "eset_upd" / "ep11" / "em000.nup").write_bytes(FILE)
    return root


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, timeout=20))


def test_index_is_read_and_unchanged_the_second_time(tree):
    async def scenario():
        up = FolderUpstream(tree.as_uri())
        url = (tree / "eset_upd" / "ep11" / "update.ver").as_uri()
        first = await up.fetch_index(url, None, 1000)
        again = await up.fetch_index(url, first.validators, 1000)
        return first, again

    first, again = run(scenario())
    assert first.changed and first.body == INDEX and first.validators["etag"]
    assert not again.changed and again.body == b""


def test_index_changed_on_disk_is_fetched_again(tree):
    index = tree / "eset_upd" / "ep11" / "update.ver"

    async def scenario():
        up = FolderUpstream(tree)
        first = await up.fetch_index(index.as_uri(), None, 1000)
        index.write_bytes(INDEX + b"[NEW]\r\n")
        os.utime(index, ns=(1, 1))
        return await up.fetch_index(index.as_uri(), first.validators, 1000)

    assert run(scenario()).body == INDEX + b"[NEW]\r\n"


def test_host_absolute_paths_resolve_inside_the_root(tree):
    async def scenario():
        up = FolderUpstream(str(tree))
        via_file_url = await up.fetch_index("file:///eset_upd/ep11/update.ver", None, 1000)
        via_http_path = await up.fetch_index("http://update.eset.com/eset_upd/ep11/update.ver", None, 1000)
        return via_file_url.body, via_http_path.body

    assert run(scenario()) == (INDEX, INDEX)


def test_download_resumes_a_partial_file(tree, tmp_path):
    part = tmp_path / "store" / "em000.nup.part"
    part.parent.mkdir()
    part.write_bytes(FILE[:1000])
    progress = []

    async def scenario():
        up = FolderUpstream(tree)
        return await up.download("/eset_upd/ep11/em000.nup", part, len(FILE), 10**8, progress.append), up

    done, up = run(scenario())
    assert done == part and part.read_bytes() == FILE
    assert sum(progress) == len(FILE) - 1000 == up.stats.bytes


def test_missing_file_is_not_found(tree, tmp_path):
    with pytest.raises(NotFoundError, match="nothing.nup"):
        run(FolderUpstream(tree).download("/eset_upd/nothing.nup", tmp_path / "x.part", None, 100))


def test_size_different_from_the_index_is_refused(tree, tmp_path):
    with pytest.raises(UpstreamError, match=str(len(FILE))):
        run(FolderUpstream(tree).download("/eset_upd/ep11/em000.nup", tmp_path / "x.part",
                                          len(FILE) + 1, 10**8))


def test_index_over_the_bound_is_too_large(tree):
    with pytest.raises(TooLargeError):
        run(FolderUpstream(tree).fetch_index("/eset_upd/ep11/update.ver", None, len(INDEX) - 1))


def test_paths_leaving_the_root_are_refused(tree, tmp_path):
    (tmp_path / "secret").write_bytes(b"x")
    os.symlink(tmp_path / "secret", tree / "link")
    up = FolderUpstream(tree)
    with pytest.raises(UpstreamError, match=r"'\.\.'"):
        run(up.fetch_index("/eset_upd/../../secret", None, 100))
    with pytest.raises(UpstreamError, match="outside"):
        run(up.fetch_index("/link", None, 100))


def test_open_upstream_picks_a_folder_for_a_file_url(tree):
    assert isinstance(open_upstream(UpstreamConfig(url=tree.as_uri() + "/")), FolderUpstream)
