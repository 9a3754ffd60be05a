"""Reading an upper mirror's manifest: bounded, and told apart from a page that is none."""

from __future__ import annotations

import asyncio
import json

import pytest

from updmirror.errors import FormatError
from updmirror.store.tiers import MAX_TIER_MANIFEST_BYTES
from updmirror.sync.tiers import fetch_upper_manifest, parse_upper_manifest
from updmirror.upstream import HttpUpstream, TooLargeError, UpstreamConfig

URL = "http://127.0.0.1:9/updmirror/manifest.json"
SHA = "ab" * 32


async def _endless_server(sent: list[int]):
    """An HTTP server whose manifest never ends (no Content-Length), counting what it sent."""

    async def answer(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")
        chunk = b'{"format": "updmirror-tier-manifest", "files": {' + b" " * (1024 * 1024)
        try:
            while sent[0] < 4 * MAX_TIER_MANIFEST_BYTES:
                writer.write(chunk)
                sent[0] += len(chunk)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", 0)


def test_an_endless_manifest_is_refused_at_the_bound():
    async def main():
        sent = [0]
        server = await _endless_server(sent)
        port = server.sockets[0].getsockname()[1]
        upstream = HttpUpstream(UpstreamConfig(url=f"http://127.0.0.1:{port}/", retries=0, stall_timeout=5))
        try:
            with pytest.raises(TooLargeError) as refused:
                await asyncio.wait_for(fetch_upper_manifest(upstream, f"http://127.0.0.1:{port}/"), 30)
        finally:
            await upstream.close()
            server.close()
        return refused.value, sent[0]

    error, sent = asyncio.run(main())
    assert "updmirror/manifest.json" in str(error)
    assert sent < 2 * MAX_TIER_MANIFEST_BYTES       # the mirror stopped reading, not the server


def test_a_page_that_is_no_manifest_means_none():
    assert parse_upper_manifest(b"<html>Not here</html>", URL) is None
    assert parse_upper_manifest(json.dumps({"hello": 1}).encode(), URL) is None


@pytest.mark.parametrize("files, why", [
    ({"/m/a.nup": {"size": -1, "sha256": SHA}}, "size -1"),
    ({"/m/a.nup": {"size": 5, "sha256": "nothex"}}, "SHA-256 'nothex'"),
    (None, "no files"),
])
def test_a_broken_manifest_is_an_error_naming_its_url(files, why):
    body = json.dumps({"format": "updmirror-tier-manifest", "version": 1, "files": files}).encode()
    with pytest.raises(FormatError) as broken:
        parse_upper_manifest(body, URL)
    assert URL in str(broken.value) and why in str(broken.value)


def test_hop_names_from_upstream_are_cut_to_safe_letters():
    body = json.dumps({"format": "updmirror-tier-manifest", "version": 1, "files": {},
                       "mirror": "<script>alert(1)</script>" + "x" * 100}).encode()
    manifest = parse_upper_manifest(body, URL)
    assert "<" not in manifest.mirror and len(manifest.mirror) <= 64
