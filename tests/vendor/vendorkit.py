"""Helpers for the vendor tests: one request over a real socket."""

from __future__ import annotations

import base64
import http.client
from dataclasses import dataclass

from updmirror.vendor.server import VendorServer

USER = "EAV-0123456789"
PASSWORD = "s3cretPass"


def auth_header(user: str = USER, password: str = PASSWORD) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes
    error: Exception | None = None   # set when the body ended early or timed out


def fetch(srv: VendorServer, path: str, headers: dict | None = None, method: str = "GET",
          timeout: float = 10, auth: bool = True) -> Reply:
    """One request over a real socket; a short or stalled body is reported, not raised."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=timeout)
    try:
        conn.request(method, path, headers={**(auth_header() if auth else {}), **(headers or {})})
        resp = conn.getresponse()
        body, error = bytearray(), None
        try:
            # Chunk by chunk, so that what came before a stall is kept.
            while chunk := resp.read1(65536):
                body += chunk
            if resp.length:   # http.client counts down what Content-Length promised
                error = http.client.IncompleteRead(bytes(body), resp.length)
        except http.client.IncompleteRead as exc:
            error = exc
        except TimeoutError as exc:
            error = exc
        return Reply(resp.status, resp.headers, bytes(body), error)
    finally:
        conn.close()
