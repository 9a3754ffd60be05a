"""The status page as an administrator sees it: headless Chromium loads it
over HTTP on loopback, and we check the rendered DOM and the pixels."""

import shutil
import struct
import subprocess
import threading
import time
import zlib
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from updmirror import config
from updmirror.serve.status import render_status_html
from updmirror.store.records import append_run
from updmirror.store.snapshots import Store

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                                "(apt-get install chromium); the browser test needs it")

INDEXES = [
    {"tree": "ep11", "channel": "regular", "path": "eset_upd/ep11/dll/update.ver", "versionid": 31234,
     "files": 120, "bytes": 123_456_789},
    {"tree": "v16", "channel": "regular", "path": "eset_upd/v16/dll/update.ver", "versionid": 29876,
     "files": 95, "bytes": 87_654_321},
]
# The header colours of status_page's stylesheet.
GREEN, AMBER = (0x1A, 0x7F, 0x37), (0x9A, 0x67, 0x00)


def make_mirror(tmp_path: Path, synced_ago: float):
    (tmp_path / "mirror.toml").write_text(
        '[upstream]\nurl = "http://127.0.0.1:9/"\n'
        '[mirror]\nroot = "store"\ntrees = ["ep11", "v16"]\ninterval = "1h"\n')
    cfg = config.load(tmp_path / "mirror.toml")
    store = Store(cfg.mirror.root)
    now = time.time()
    builder = store.new_snapshot()
    for entry in INDEXES:
        builder.write(entry["path"], b"[HOSTS]\r\n")
    builder.publish({"indexes": INDEXES, "created": now - synced_ago})
    append_run(store.state, {"started": now - synced_ago - 20, "finished": now - synced_ago, "ok": True,
                             "message": "published", "indexes": [dict(e, changed=True) for e in INDEXES],
                             "files_fetched": 215, "bytes_fetched": 211_111_110, "errors": []})
    return cfg, store


class StatusServer:
    """The page from a loopback HTTP server, as the mirror serves it."""

    def __init__(self, cfg, store):
        counters = {"requests_total": 4242, "bytes_sent": 9_999_999, "clients": 17, "connections_open": 2,
                    "responses": {"2xx": 4200, "4xx": 42}, "started": time.time() - 3600}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path != "/status":
                    self.send_error(404)
                    return
                body = render_status_html(store, cfg, counters)
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/status"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'chromium-profile'}", *args],
        capture_output=True, text=True, timeout=90)


class Page(HTMLParser):
    """The rendered DOM: each element's classes and its text, by id and by section."""

    def __init__(self, dom: str):
        super().__init__()
        self.stack: list[dict] = []
        self.elements: list[dict] = []
        self.feed(dom)

    def handle_starttag(self, tag, attrs):
        el = {"tag": tag, "attrs": dict(attrs), "text": ""}
        if tag not in ("meta", "br", "link", "input", "img"):
            self.stack.append(el)
        self.elements.append(el)

    def handle_endtag(self, tag):
        while self.stack:
            if self.stack.pop()["tag"] == tag:
                break

    def handle_data(self, data):
        for el in self.stack:
            el["text"] += data

    def find(self, tag, **attrs):
        return [e for e in self.elements if e["tag"] == tag
                and all(e["attrs"].get(k.replace("_", "-")) == v for k, v in attrs.items())]


def load(tmp_path, cfg, store) -> tuple[Page, str]:
    with StatusServer(cfg, store) as server:
        result = chromium(tmp_path, "--dump-dom", server.url)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "</html>" in result.stdout, result.stderr[-2000:]
    return Page(result.stdout), result.stdout


def test_chromium_shows_a_fresh_mirror_with_its_trees_and_versions(tmp_path):
    cfg, store = make_mirror(tmp_path, synced_ago=300)
    page, dom = load(tmp_path, cfg, store)
    (header,) = page.find("header", id="state")
    assert header["attrs"]["class"] == "state fresh" and "fresh" in header["text"]
    assert "STALE" not in dom
    for entry in INDEXES:
        (section,) = page.find("section", data_tree=entry["tree"], data_channel="regular")
        assert section["attrs"]["class"] == "tree fresh"
        assert entry["path"] in section["text"] and str(entry["versionid"]) in section["text"]
    assert "4,242" in dom and "17" in dom          # requests and clients from the server


def test_chromium_shows_a_stale_mirror_as_stale(tmp_path):
    cfg, store = make_mirror(tmp_path, synced_ago=5 * 3600)
    page, _ = load(tmp_path, cfg, store)
    (header,) = page.find("header", id="state")
    assert header["attrs"]["class"] == "state stale" and "STALE" in header["text"]
    for entry in INDEXES:
        (section,) = page.find("section", data_tree=entry["tree"], data_channel="regular")
        assert section["attrs"]["class"] == "tree stale" and "STALE" in section["text"]
        (table,) = [t for t in page.find("table", **{"class": "stale"}) if entry["path"] in t["text"]]
        assert "5 h" in table["text"]
    (problems,) = page.find("ul", id="problems")
    assert "eset_upd/ep11/dll/update.ver" in problems["text"] and "limit 2 h" in problems["text"]


@pytest.mark.parametrize("synced_ago, colour", [(300, GREEN), (5 * 3600, AMBER)], ids=["fresh", "stale"])
def test_the_header_is_painted_in_the_state_colour(tmp_path, synced_ago, colour):
    cfg, store = make_mirror(tmp_path, synced_ago=synced_ago)
    shot = tmp_path / "status.png"
    with StatusServer(cfg, store) as server:
        result = chromium(tmp_path, "--window-size=1024,768", "--hide-scrollbars",
                          f"--screenshot={shot}", server.url)
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    width, rows = read_png_rows(shot.read_bytes(), upto=12)
    assert width == 1024
    assert rows[10][5] == colour, rows[10][5]


def read_png_rows(data: bytes, upto: int) -> tuple[int, list[list[tuple[int, int, int]]]]:
    """The first `upto` rows of an 8-bit RGB(A) PNG as RGB tuples (enough to
    check a colour without an imaging library)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, _height, depth, colour_type = struct.unpack(">IIBB", chunk[:10])
            assert depth == 8 and colour_type in (2, 6), (depth, colour_type)
            bpp = 4 if colour_type == 6 else 3
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = zlib.decompressobj().decompress(idat, (width * bpp + 1) * upto)
    stride = width * bpp
    rows, previous = [], bytearray(stride)
    for y in range(upto):
        line = raw[y * (stride + 1):(y + 1) * (stride + 1)]
        kind, cur = line[0], bytearray(line[1:])
        for i in range(stride):
            a = cur[i - bpp] if i >= bpp else 0
            b, c = previous[i], previous[i - bpp] if i >= bpp else 0
            if kind == 1:
                cur[i] = (cur[i] + a) & 0xFF
            elif kind == 2:
                cur[i] = (cur[i] + b) & 0xFF
            elif kind == 3:
                cur[i] = (cur[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                cur[i] = (cur[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append([tuple(cur[x * bpp:x * bpp + 3]) for x in range(width)])
        previous = cur
    return width, rows
