"""HttpUpstream against the simulated vendor (updmirror.vendor.server) and its fault injection.

The fine-grained cases live in test_http.py with a scripted server; this
pins down that the fetcher and the vendor the sync is tested against agree
(Basic auth, ranges, Last-Modified, gzip, and each transport fault).
"""

from __future__ import annotations

import asyncio
import gzip
import time

import pytest

from updmirror.upstream import AuthError, HttpUpstream, StalledError, TooLargeError, UpstreamConfig
from updmirror.vendor.faults import Fault
from updmirror.vendor.server import VendorServer

USER, PASSWORD = "EAV-0123456789", "vendor-Pa55"
INDEX = b"[ENGINE2]\r\nversion=1\r\n" * 100
NUP = bytes(range(256)) * 2048  # 512 KiB
STALL = 1.0


@pytest.fixture
def vendor(tmp_path):
    www = tmp_path / "www"
    (www / "eset_upd").mkdir(parents=True)
    (www / "eset_upd" / "update.ver").write_bytes(INDEX)
    (www / "eset_upd" / "em000.nup").write_bytes(NUP)
    with VendorServer(www, USER, PASSWORD, gzip=True) as server:
        yield server


def fetcher(vendor: VendorServer, password: str = PASSWORD, **overrides) -> HttpUpstream:
    settings = dict(url=vendor.url, username=USER, password=password, stall_timeout=STALL,
                    min_speed=1000, retries=3, connect_timeout=2.0)
    settings.update(overrides)
    return HttpUpstream(UpstreamConfig(**settings), backoff_base=0.02)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, timeout=20))


def no_secret(exc: BaseException) -> str:
    text = f"{exc} {exc!r}"
    assert PASSWORD not in text and "wrong-Secret" not in text
    return str(exc)


def test_index_is_fetched_decoded_then_unchanged_by_last_modified(vendor):
    async def scenario():
        async with fetcher(vendor) as up:
            first = await up.fetch_index(vendor.url + "eset_upd/update.ver", None, len(INDEX))
            again = await up.fetch_index(vendor.url + "eset_upd/update.ver", first.validators, len(INDEX))
            return first, again

    first, again = run(scenario())
    assert first.changed and first.body == INDEX and "last_modified" in first.validators
    assert not again.changed and again.body == b""
    assert vendor.count("eset_upd/update.ver", status=304) == 1


def test_gzip_from_the_vendor_is_checked_on_the_decoded_size(vendor):
    assert len(gzip.compress(INDEX)) < len(INDEX) - 1

    async def scenario():
        async with fetcher(vendor) as up:
            await up.fetch_index(vendor.url + "eset_upd/update.ver", None, len(INDEX) - 1)

    with pytest.raises(TooLargeError) as info:
        run(scenario())
    # Refused while decoding, not up front by the (compressed, small enough) Content-Length:
    # were the body not gzipped, the up-front refusal would pass this test for the wrong reason.
    assert "Content-Length" not in no_secret(info.value)


def test_wrong_password_is_an_auth_error_after_one_request(vendor):
    async def scenario():
        async with fetcher(vendor, password="wrong-Secret") as up:
            await up.fetch_index(vendor.url + "eset_upd/update.ver", None, 10**6)

    with pytest.raises(AuthError) as info:
        run(scenario())
    assert "check [upstream] username and password" in no_secret(info.value)
    assert vendor.count("eset_upd/update.ver") == 1


@pytest.mark.parametrize("fault", [
    Fault("status", "eset_upd/em000.nup", times=2, arg="500"),
    Fault("status", "eset_upd/em000.nup", times=1, arg="429,1"),
    Fault("truncate", "eset_upd/em000.nup", times=2, arg=100_000),
], ids=["500-twice", "429-retry-after", "truncated-twice"])
def test_transient_faults_are_retried_and_the_file_is_byte_identical(vendor, tmp_path, fault):
    vendor.set_faults([fault])
    part = tmp_path / "store" / "em000.nup.part"

    async def scenario():
        async with fetcher(vendor) as up:
            await up.download(vendor.url + "eset_upd/em000.nup", part, len(NUP), 10**7)
            return up.stats

    stats = run(scenario())
    assert part.read_bytes() == NUP
    assert stats.retries == fault.times


def test_truncated_download_resumes_from_what_arrived(vendor, tmp_path):
    vendor.set_faults([Fault("truncate", "eset_upd/em000.nup", times=1, arg=200_000)])

    async def scenario():
        async with fetcher(vendor) as up:
            await up.download(vendor.url + "eset_upd/em000.nup", tmp_path / "f.part", len(NUP), 10**7)
            return up.stats

    stats = run(scenario())
    # Everything once, plus at most what was in flight when the connection dropped.
    assert len(NUP) <= stats.bytes < len(NUP) + 200_000
    assert vendor.count("eset_upd/em000.nup", status=206) == 1


@pytest.mark.parametrize("fault", [Fault("stall", "eset_upd/em000.nup", arg=5),
                                   Fault("slow", "eset_upd/em000.nup", arg=200)],
                         ids=["stall", "slow-drip"])
def test_stalled_or_dripping_vendor_is_given_up(vendor, tmp_path, fault):
    vendor.set_faults([fault])

    async def scenario():
        async with fetcher(vendor, retries=0) as up:
            await up.download(vendor.url + "eset_upd/em000.nup", tmp_path / "f.part", len(NUP), 10**7)

    started = time.monotonic()
    with pytest.raises(StalledError) as info:
        run(scenario())
    assert time.monotonic() - started < STALL * 3
    assert vendor.url + "eset_upd/em000.nup" in no_secret(info.value)


def test_endless_vendor_body_is_too_large(vendor):
    vendor.set_faults([Fault("endless", "eset_upd/update.ver", arg=64)])

    async def scenario():
        async with fetcher(vendor) as up:
            await up.fetch_index(vendor.url + "eset_upd/update.ver", None, 1024 * 1024)
            return up.stats

    with pytest.raises(TooLargeError) as info:
        run(scenario())
    no_secret(info.value)
