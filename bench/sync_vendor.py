"""What the sync benchmarks share: a cached simulated vendor, its server, a mirror.toml, curl.

Not a benchmark itself. The vendor repository is generated once per
(seed, size, trees) under WORK (see common.py) and reused while its
vendor.json still says release 1 of the same seed, size and trees; a
benchmark that publishes works on a hard-linked copy, so the cached one
stays at release 1 (the generator and `vendor publish` replace files,
they never modify one in place).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import urllib.request
from pathlib import Path

from common import WORK, Service, free_port, remove_tree, updmirror, use_repo_sources

use_repo_sources()

from updmirror.eset.modules import modules  # noqa: E402
from updmirror.eset.trees import CHANNELS, TREES  # noqa: E402
from updmirror.eset.updatever import UpdateVer  # noqa: E402
from updmirror.vendor.generate import STATE_FORMAT  # noqa: E402

USER = "EAV-0123456789"
#: The simulated vendor's password: loopback only, never a real secret.
PASSWORD = "Bench-7Kq2"
CONTROL = "/__vendor/faults"


def vendor_root(seed: int, size_mb: float, trees: list[str]) -> Path:
    return WORK / f"vendor-seed{seed}-{size_mb:g}mb-{'-'.join(trees)}"


def cached_vendor(seed: int, size_mb: float, trees: list[str], *, timeout: float = 3600) -> Path:
    """A generated vendor repository at release 1, reused when one with the same options exists."""
    root = vendor_root(seed, size_mb, trees)
    try:
        state = json.loads((root / "vendor.json").read_text())
        # A repository of an older generator (another format) is made again.
        if (state["seed"], float(state["size_mb"]), state["trees"], state["release"], state["format"]) == (
            seed,
            float(size_mb),
            list(trees),
            1,
            STATE_FORMAT,
        ):
            print(f"reusing the vendor repository in {root}", flush=True)
            return root
    except (OSError, ValueError, KeyError):
        pass
    remove_tree(root)
    print(
        f"generating a {size_mb:g} MiB vendor repository in {root} (once; reused by later runs) ...",
        flush=True,
    )
    subprocess.run(
        updmirror(
            "vendor",
            "generate",
            "--root",
            str(root),
            "--seed",
            str(seed),
            "--size-mb",
            str(size_mb),
            "--trees",
            *trees,
        ),
        check=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return root


def fingerprint(root: Path) -> str:
    return json.loads((root / "vendor.json").read_text())["fingerprint"]


def legacy_key_id(root: Path) -> str:
    """The simulated vendor's DSA key, which alone signs its modules of 2010 (like the vendor's)."""
    return json.loads((root / "vendor.json").read_text())["other_fingerprint"][-16:]


def vendor_server(root: Path, log: Path) -> tuple[Service, str]:
    """The simulated vendor serving `root` as a process of its own (its own GIL), and its URL."""
    port = free_port()
    cmd = updmirror(
        "vendor",
        "serve",
        "--root",
        str(root),
        "--listen",
        f"127.0.0.1:{port}",
        "--user",
        USER,
        "--password",
        PASSWORD,
        "--control",
    )
    return Service(cmd, port=port, log=log), f"http://127.0.0.1:{port}/"


def vendor_requests(url: str) -> int:
    """Requests the vendor server has answered so far (its own count, from its control endpoint)."""
    with urllib.request.urlopen(url.rstrip("/") + CONTROL, timeout=10) as resp:  # noqa: S310 - loopback
        return int(json.loads(resp.read())["requests"])


def index_paths(trees: list[str], channels: list[str]) -> list[str]:
    return [p for t in trees for c in channels for p in TREES[t].index_paths(c)]


def all_channels() -> list[str]:
    return list(CHANNELS)


def write_mirror_config(
    path: Path,
    *,
    url: str,
    store: Path,
    trees: list[str],
    channels: list[str],
    signing_key: str,
    legacy_key_id: str | None = None,
    parallel: int | None = None,
    platforms: list[str] = (),
    languages: list[int] = (),
    username: str = USER,
    password: str = PASSWORD,
    extra: dict[str, list[str]] | None = None,
) -> Path:
    """A mirror configuration for the simulated vendor (or, with `username` and `password`, for
    an upper mirror); `parallel` None keeps the mirror's default; `extra`: more lines by table
    ("upstream", "mirror", "verify", or a table of their own such as "http")."""
    extra = dict(extra or {})
    tables = {
        "upstream": [
            f'url = "{url}"',
            f'username = "{username}"',
            f'password = "{password}"',
            *([f"parallel = {parallel}"] if parallel is not None else []),
        ],
        "mirror": [
            f'root = "{store}"',
            f"trees = {json.dumps(list(trees))}",
            f"channels = {json.dumps(list(channels))}",
            f"platforms = {json.dumps(list(platforms))}",
            f"languages = {json.dumps(list(languages))}",
        ],
        "verify": [
            f'signing_keys = ["{signing_key}"]',
            *([f'legacy_key_ids = ["{legacy_key_id}"]'] if legacy_key_id else []),
        ],
    }
    for name, lines in extra.items():
        tables.setdefault(name, []).extend(lines)
    path.write_text("".join(f"[{name}]\n" + "".join(f"{line}\n" for line in lines) + "\n"
                            for name, lines in tables.items()))
    return path


def sync_command(config: Path, sync_cmd: str | None = None) -> list[str]:
    """`updmirror -q sync -c CONFIG --json`; `sync_cmd` replaces `python -m updmirror` (e.g. a
    candidate build: "env X=1 /path/python /path/runner.py"), the arguments stay the same."""
    head = shlex.split(sync_cmd) if sync_cmd else updmirror()
    return [*head, "-q", "sync", "-c", str(config), "--json"]


def run_sync_json(config: Path, *, timeout: float, sync_cmd: str | None = None):
    """`updmirror sync -c CONFIG --json`, measured; returns (Measured, the JSON summary)."""
    from common import run_measured

    m = run_measured(sync_command(config, sync_cmd), timeout=timeout).check()
    return m, json.loads(m.stdout)


def listed_files(
    www: Path, paths: list[str], platforms: list[str] = (), languages: list[int] = ()
) -> dict[str, int]:
    """host-relative file path -> size, for every module file the given indexes in `www` list.

    The selection is applied here independently of the sync's own code (same
    rule: a section with no platform or language applies to everyone).
    """
    out: dict[str, int] = {}
    for path in paths:
        index = UpdateVer.parse((www / path).read_bytes(), str(www / path))
        for m in modules(index, "http://vendor/" + path):
            if platforms and m.platform and m.platform.lower() not in platforms:
                continue
            if languages and m.language is not None and m.language not in languages:
                continue
            # A section without size= (the vendor's indexes have some): the file's own size.
            out[m.path] = m.size if m.size is not None else (www / m.path.lstrip("/")).stat().st_size
    return out


def curl_config(cfg: Path, url: str, paths: list[str], outdir: Path) -> Path:
    """A curl config (`curl -K`) that fetches each path of `url` into outdir, with the credentials."""
    lines = [f'user = "{USER}:{PASSWORD}"']
    for p in paths:
        rel = p.lstrip("/")
        lines += [f'url = "{url}{rel}"', f'output = "{outdir / rel}"']
    cfg.write_text("\n".join(lines) + "\n")
    os.chmod(cfg, 0o600)
    return cfg


def curl_parallel(cfg: Path, parallel: int) -> list[str]:
    """curl fetching everything in `cfg` over `parallel` connections, no verification at all."""
    return [
        "curl",
        "--silent",
        "--show-error",
        "--fail",
        "--create-dirs",
        "--parallel",
        "--parallel-max",
        str(parallel),
        "--config",
        str(cfg),
    ]


def folder_bytes(folder: Path) -> tuple[int, int]:
    """(files, bytes) under a folder."""
    n = size = 0
    for dirpath, _, names in os.walk(folder):
        for name in names:
            n += 1
            size += os.stat(os.path.join(dirpath, name)).st_size
    return n, size
