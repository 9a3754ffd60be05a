"""The status page as an administrator sees it: the real server serves it on
loopback, headless Chromium loads it, and we check the rendered DOM and the
pixels."""

import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import urllib.request
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from updmirror import config
from updmirror.status import duration
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
# The header colours of status/page.py's stylesheet.
GREEN, AMBER = (0x1A, 0x7F, 0x37), (0x9A, 0x67, 0x00)
SRC = Path(__file__).resolve().parents[2] / "src"


def make_mirror(tmp_path: Path, synced_ago: float, port: int):
    (tmp_path / "mirror.toml").write_text(
        '[upstream]\nurl = "http://127.0.0.1:9/"\n'
        '[mirror]\nroot = "store"\ntrees = ["ep11", "v16"]\ninterval = "1h"\n'
        f'[http]\nlisten = ["127.0.0.1:{port}"]\nworkers = 1\n')
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
    return cfg


class MirrorServer:
    """The real server (`python -m updmirror serve`) on a loopback port, as
    an administrator's browser meets it. Every wait is bounded."""

    def __init__(self, cfg_path: Path, port: int):
        self.port = port
        self.url = f"http://127.0.0.1:{port}/status"
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            p for p in (str(SRC), os.environ.get("PYTHONPATH")) if p))
        self.proc = subprocess.Popen([sys.executable, "-m", "updmirror", "serve", "-c", str(cfg_path)],
                                     env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def get(self, path: str) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as response:
            response.read()
            return response.status

    def __enter__(self):
        until = time.monotonic() + 20
        while time.monotonic() < until:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}: {self.proc.stderr.read()}")
            try:
                self.get("/status.json")
                return self
            except OSError:
                time.sleep(0.1)
        raise AssertionError("the server did not answer within 20 s")

    def __exit__(self, *exc):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate(timeout=5)


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

    def figure(self, name: str) -> str:
        """The value under a heading of the server panel (<dt>name</dt><dd>value</dd>)."""
        (dt,) = [e for e in self.find("dt") if e["text"] == name]
        return self.elements[self.elements.index(dt) + 1]["text"]

    def find(self, tag, **attrs):
        return [e for e in self.elements if e["tag"] == tag
                and all(e["attrs"].get(k.replace("_", "-")) == v for k, v in attrs.items())]


def load(tmp_path, cfg, port, requests: int = 0) -> tuple[Page, str]:
    with MirrorServer(cfg.path, port) as server:
        for _ in range(requests):
            assert server.get("/" + INDEXES[0]["path"]) == 200
        result = chromium(tmp_path, "--dump-dom", server.url)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "</html>" in result.stdout, result.stderr[-2000:]
    return Page(result.stdout), result.stdout


def test_chromium_shows_a_fresh_mirror_with_its_trees_and_versions(tmp_path, free_port):
    cfg = make_mirror(tmp_path, synced_ago=300, port=free_port)
    page, dom = load(tmp_path, cfg, free_port, requests=3)
    (header,) = page.find("header", id="state")
    assert header["attrs"]["class"] == "state fresh" and "fresh" in header["text"]
    assert "STALE" not in dom
    for entry in INDEXES:
        (section,) = page.find("section", data_tree=entry["tree"], data_channel="regular")
        assert section["attrs"]["class"] == "tree fresh"
        assert entry["path"] in section["text"] and str(entry["versionid"]) in section["text"]
    # The server's own counters: three index downloads and the start-up check, at least.
    assert int(page.figure("Requests").replace(",", "")) >= 4
    assert page.figure("Clients") == "1"


def test_chromium_shows_a_stale_mirror_as_stale(tmp_path, free_port):
    cfg = make_mirror(tmp_path, synced_ago=5 * 3600, port=free_port)
    page, _ = load(tmp_path, cfg, free_port)
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
def test_the_header_is_painted_in_the_state_colour(tmp_path, free_port, synced_ago, colour):
    cfg = make_mirror(tmp_path, synced_ago=synced_ago, port=free_port)
    shot = tmp_path / "status.png"
    with MirrorServer(cfg.path, free_port) as server:
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


def test_chromium_shows_at_the_third_tier_the_age_against_the_vendor_and_each_hops_lag(tmp_path, tier_chain):
    import json

    import tierkit

    chain = tier_chain()
    chain.sync_all()
    c = chain["C"]
    facts = json.loads(tierkit.get(c, "status.json"))
    (index,) = [i for i in facts["indexes"] if i["path"] == tierkit.INDEX]
    # C asks for Basic credentials, like every mirror of the chain; Chromium sends those of the URL.
    result = chromium(tmp_path, "--dump-dom", f"http://{c.user}:{c.password}@127.0.0.1:{c.port}/status")
    assert result.returncode == 0 and "</html>" in result.stdout, result.stderr[-2000:]
    page = Page(result.stdout)
    (age,) = page.find("p", **{"class": "vendor-age", "data_path": tierkit.INDEX})
    # Rendered a moment after status.json was read: the same age, or a few seconds more.
    shown = re.search(rf"Age against the vendor of {re.escape(tierkit.INDEX)}: (\d+) s through 3 mirror\(s\)",
                      age["text"])
    assert shown and 0 <= int(shown.group(1)) - int(index["age_vs_vendor_seconds"]) <= 30, age["text"]
    hops = [e for e in page.find("tr") if e["attrs"].get("class") == "hop"]
    assert [h["attrs"]["data-hop"] for h in hops] == ["A", "B", "C"]
    shown_lags = [next(e for e in page.elements[page.elements.index(h):]
                       if e["attrs"].get("class") == "num lag")["text"] for h in hops]
    assert shown_lags == [duration(h["lag_seconds"]) for h in index["hops"]]
    assert shown_lags[0] == "0 s"
