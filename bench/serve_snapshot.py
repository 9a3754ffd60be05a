"""What the serving benchmarks share: a synced snapshot after one release, and the servers.

Not a benchmark itself. `snapshot()` makes (once, then reuses) a mirror
store under WORK/serve whose current snapshot is release 2 of a simulated
vendor repository (seed 1, 256 MiB, trees ep11, v16, v5, every channel
that `[mirror] channels = ["regular"]` syncs): a first sync at release 1,
`updmirror vendor publish`, a second sync. The release-1 indexes are kept
next to the store, so a benchmark knows which files are new in release 2:
what a client that was up to date at release 1 downloads after the release.

Three servers serve its tree `<store>/current/tree/`:
- `ours()`:   `updmirror serve` with `[http] workers = N` (0: one per core);
- `nginx()`:  nginx from the template in bench/nginx/, non-daemon, with a
  temporary prefix, doing the same User-Agent routing with a `map`;
- `floor()`:  `python -m http.server` on the tree (no routing: clients ask it
  for the vendor index path directly).
Each is a common.Service: started on 127.0.0.1, stopped (its whole process
group) by itself.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from common import WORK, Service, copy_tree_linked, free_port, remove_tree, updmirror, use_repo_sources

use_repo_sources()

from sync_vendor import cached_vendor, fingerprint, vendor_server, write_mirror_config  # noqa: E402

from updmirror.client.update import USER_AGENTS, needed  # noqa: E402
from updmirror.eset.modules import modules  # noqa: E402
from updmirror.eset.trees import TREES  # noqa: E402
from updmirror.eset.updatever import UpdateVer  # noqa: E402

HERE = Path(__file__).resolve().parent
SERVE_WORK = WORK / "serve"
TREE_NAMES = ["ep11", "v16", "v5"]
SIZE_MB = 256
SEED = 1
NGINX = "/usr/sbin/nginx"
#: The open-files limit the benchmarks ask for (10,000 connections need more than 1024).
WANTED_NOFILE = 65536


def raise_open_files() -> int:
    """Raise this process's open-files limit as far as allowed; children inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = WANTED_NOFILE if hard == resource.RLIM_INFINITY else min(WANTED_NOFILE, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def code_version() -> str:
    """The commit of the server's code being measured (it changes while others work), and whether
    src/updmirror/serve has uncommitted changes."""
    repo = HERE.parent
    try:
        commit = subprocess.run(["git", "-C", str(repo), "log", "-1", "--format=%h %cd", "--date=format:%H:%M",
                                 "--", "src/updmirror/serve"], capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--", "src/updmirror/serve"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"src/updmirror/serve at {commit or 'unknown'}" + (" + uncommitted changes" if dirty else "")


def need_tool(path: str, package: str) -> str:
    found = shutil.which(path) or (path if os.access(path, os.X_OK) else None)
    if not found:
        sys.exit(f"{path} not found: this benchmark needs it (Debian: apt-get install {package})")
    return found


# -- the snapshot ---------------------------------------------------------------------

@dataclass
class Snapshot:
    store: Path
    tree: Path                      # <store>/current/tree, resolved
    old_indexes: Path               # the release-1 indexes, by vendor path

    def index_path(self, tree: str, dll: bool = True) -> str:
        """The vendor path (no leading slash) of a tree's regular index."""
        paths = TREES[tree].index_paths("regular")
        for p in paths:
            if p.endswith("dll/update.ver") == dll:
                return p
        return paths[0]


def snapshot() -> Snapshot:
    """The benchmark's synced store at release 2 (made once, then reused)."""
    root = SERVE_WORK
    store, old = root / "store", root / "release1-indexes"
    done = root / "ready.json"
    if done.exists() and (store / "current" / "tree").is_dir():
        return Snapshot(store, (store / "current" / "tree").resolve(), old)
    for stale in (store, old, root / "vendor"):   # not logs/, results or profiles/ next to them
        remove_tree(stale)
    root.mkdir(parents=True, exist_ok=True)
    pristine = cached_vendor(SEED, SIZE_MB, TREE_NAMES)
    vendor = root / "vendor"
    copy_tree_linked(pristine, vendor)
    conf = root / "sync.toml"
    server, url = vendor_server(vendor, root / "vendor.log")
    with server:
        write_mirror_config(conf, url=url, store=store, trees=TREE_NAMES, channels=["regular"],
                            signing_key=fingerprint(vendor))
        print("syncing release 1 ...", flush=True)
        subprocess.run(updmirror("-q", "sync", "-c", str(conf)), check=True, timeout=1800,
                       stdin=subprocess.DEVNULL)
        tree = (store / "current" / "tree").resolve()
        for t in TREE_NAMES:
            for p in TREES[t].index_paths("regular"):
                if (tree / p).exists():
                    (old / p).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(tree / p, old / p)
        print("vendor publishes release 2; syncing it ...", flush=True)
        subprocess.run(updmirror("-q", "vendor", "publish", "--root", str(vendor)), check=True,
                       timeout=1800, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        subprocess.run(updmirror("-q", "sync", "-c", str(conf)), check=True, timeout=1800,
                       stdin=subprocess.DEVNULL)
    remove_tree(vendor)     # the store holds its own copies (or links) of every file
    done.write_text(json.dumps({"seed": SEED, "size_mb": SIZE_MB, "trees": TREE_NAMES}))
    return Snapshot(store, (store / "current" / "tree").resolve(), old)


def new_files(snap: Snapshot, tree: str, platform: str, language: int | None = 1033) -> list[tuple[str, int]]:
    """(path, size) of what a `platform` client of `tree`, current at release 1, downloads now.

    The files its release-2 index lists for its platform and language that its
    release-1 index did not list (new delta levels, continuous deltas, new full
    modules): computed with the reference client's own `needed()` selection.
    """
    p = snap.index_path(tree)
    url = "http://mirror/" + p
    now = needed(modules(UpdateVer.parse((snap.tree / p).read_bytes(), p), url), platform, language)
    before = {m.path for m in needed(modules(UpdateVer.parse((snap.old_indexes / p).read_bytes(), p), url),
                                     platform, language)}
    return [(m.path, m.size or 0) for m in now if m.path not in before]


# -- the servers -----------------------------------------------------------------------

def ours(snap: Snapshot, workers: int, log_dir: Path) -> Service:
    port = free_port()
    conf = log_dir / f"mirror-w{workers}.toml"
    conf.write_text("\n".join([
        "[upstream]", 'url = "http://127.0.0.1:9/"', "",
        "[mirror]", f'root = "{snap.store}"', f"trees = {json.dumps(TREE_NAMES)}", 'channels = ["regular"]', "",
        "[http]", f'listen = ["127.0.0.1:{port}"]', 'allow = ["127.0.0.0/8"]', 'default_tree = "ep11"',
        # The load generators are a few loopback addresses standing for many clients.
        f"workers = {workers}", "max_connections = 50000", "max_connections_per_address = 50000", ""]))
    return Service(updmirror("-q", "serve", "-c", str(conf)), port=port, log=log_dir / f"ours-w{workers}.log")


def nginx_agent_map() -> str:
    """`map $http_user_agent $index` lines doing what serve/tables.py does for our trees.

    Endpoint agents (EEA/EES/... Update ... BPC 11.) get ep11, home agents
    (Update ... BPC 16.) v16, BPC 5. v5; anything else the default tree, ep11.
    A tree without a dll/ index (v5) answers /dll/update.ver with its update.ver,
    as the integrated server does.
    """
    return "\n".join([
        '    "~*\\b(EEA|EES|EFSW|EMSX|ESFW)\\s+Update\\b.*\\bBPC\\s+11\\." /eset_upd/ep11/dll/update.ver;',
        '    "~*\\bUpdate\\b.*\\bBPC\\s+1[6-9]\\." /eset_upd/v16/dll/update.ver;',
        '    "~*\\bUpdate\\b.*\\bBPC\\s+[5-8]\\." /eset_upd/v5/update.ver;',
        "    default /eset_upd/ep11/dll/update.ver;",
    ])


def nginx(snap: Snapshot, log_dir: Path, template: str = "serve.conf.tmpl") -> Service:
    need_tool(NGINX, "nginx-light")
    port = free_port()
    prefix = log_dir / "nginx-prefix"
    remove_tree(prefix)
    (prefix / "logs").mkdir(parents=True)
    text = (HERE / "nginx" / template).read_text()
    conf = text.replace("@PREFIX@", str(prefix)).replace("@PORT@", str(port)) \
               .replace("@ROOT@", str(snap.tree)).replace("@AGENT_MAP@", nginx_agent_map())
    (prefix / "nginx.conf").write_text(conf)
    return Service([NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", "stderr"],
                   port=port, log=log_dir / "nginx.log")


def floor(snap: Snapshot, log_dir: Path) -> Service:
    port = free_port()
    return Service([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory",
                    str(snap.tree), str(port)], port=port, log=log_dir / "http-server.log")


#: name -> (factory(snap, log_dir), routes by User-Agent)
def servers(snap: Snapshot, log_dir: Path, names: list[str]) -> dict[str, tuple]:
    table = {
        "ours-w1": (lambda: ours(snap, 1, log_dir), True),
        "ours-w2": (lambda: ours(snap, 2, log_dir), True),
        "ours-default": (lambda: ours(snap, 0, log_dir), True),
        "nginx": (lambda: nginx(snap, log_dir), True),
        "http.server": (lambda: floor(snap, log_dir), False),
    }
    unknown = [n for n in names if n not in table]
    if unknown:
        sys.exit(f"unknown server {unknown}; known: {', '.join(table)}")
    return {n: table[n] for n in names}


AGENTS = {t: USER_AGENTS[t] for t in ("ep11", "v16")}
