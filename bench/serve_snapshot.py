"""What the serving benchmarks share: a synced snapshot after one release, and the servers.

Not a benchmark itself. `snapshot()` makes (once, then reuses) a mirror
store under WORK/serve whose current snapshot is release 2 of a simulated
vendor repository (seed 1, 256 MiB, trees ep11, v16, v5, every channel
that `[mirror] channels = ["regular"]` syncs): a first sync at release 1,
`updmirror vendor publish`, a second sync. The release-1 indexes are kept
next to the store, so a benchmark knows which files are new in release 2:
what a client that was up to date at release 1 downloads after the release.

The servers serve its tree `<store>/current/tree/`:
- `ours()`:   `updmirror serve` with `[http] workers = N` (0: one per core);
- `nginx()`:  nginx with the configuration `updmirror export nginx` prints
  (the same User-Agent routing, generated from eset/trees.py), non-daemon,
  with a temporary prefix; `exported("apache", ...)` the same for Apache;
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

from sync_vendor import cached_vendor, fingerprint, legacy_key_id, vendor_server, write_mirror_config  # noqa: E402

from updmirror.client import modules_for, plan_update, user_agent  # noqa: E402
from updmirror.eset.modules import modules  # noqa: E402
from updmirror.eset.trees import TREES  # noqa: E402
from updmirror.eset.updatever import UpdateVer  # noqa: E402

HERE = Path(__file__).resolve().parent
SERVE_WORK = WORK / "serve"
TREE_NAMES = ["ep11", "v16", "v5"]
SIZE_MB = 256
SEED = 1
NGINX = "/usr/sbin/nginx"
APACHE = "/usr/sbin/apache2"
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
                            signing_key=fingerprint(vendor), legacy_key_id=legacy_key_id(vendor))
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


def client_downloads(new_index: bytes, old_index: bytes, index_path: str, platform: str,
                     language: int | None = 1033) -> list[tuple[str, int]]:
    """(path, size) of what the reference client of `platform`, current at the old index, downloads
    when the new one comes out: its own plan (the full module or the chain of deltas from the
    build it holds, client/_plan.py), not merely every file the new index added."""
    url = "http://mirror/" + index_path

    def wanted(body: bytes):
        return modules_for(modules(UpdateVer.parse(body, index_path), url), platform, language)

    held = plan_update(wanted(old_index), []).installed()
    return [(m.path, m.size or 0) for m in plan_update(wanted(new_index), held).download]


def new_files(snap: Snapshot, tree: str, platform: str, language: int | None = 1033) -> list[tuple[str, int]]:
    """(path, size) of what a `platform` client of `tree`, current at release 1, downloads now."""
    p = snap.index_path(tree)
    return client_downloads((snap.tree / p).read_bytes(), (snap.old_indexes / p).read_bytes(), p,
                            platform, language)


# -- the servers -----------------------------------------------------------------------

def mirror_config(snap: Snapshot, log_dir: Path, name: str, port: int, workers: int = 0,
                  htpasswd: Path | None = None) -> Path:
    """The benchmark mirror's mirror.toml, for our server and for the exported ones alike."""
    conf = log_dir / f"mirror-{name}.toml"
    auth = ['auth = "basic"', f'htpasswd = "{htpasswd}"'] if htpasswd else []
    conf.write_text("\n".join([
        "[upstream]", 'url = "http://127.0.0.1:9/"', "",
        "[mirror]", f'root = "{snap.store}"', f"trees = {json.dumps(TREE_NAMES)}", 'channels = ["regular"]', "",
        "[http]", f'listen = ["127.0.0.1:{port}"]', 'allow = ["127.0.0.0/8"]', 'default_tree = "ep11"',
        f"workers = {workers}", "max_connections = 50000",
        # The load generators are a few loopback addresses standing for many clients.
        "max_connections_per_address = 50000", *auth, ""]))
    return conf


def ours(snap: Snapshot, workers: int, log_dir: Path, htpasswd: Path | None = None) -> Service:
    port = free_port()
    conf = mirror_config(snap, log_dir, f"w{workers}", port, workers, htpasswd)
    return Service(updmirror("-q", "serve", "-c", str(conf)), port=port, log=log_dir / f"ours-w{workers}.log")


def exported(kind: str, snap: Snapshot, log_dir: Path, htpasswd: Path | None = None) -> Service:
    """nginx or Apache from `updmirror export nginx|apache` (the configuration sites run),
    with one worker process per core (nginx) or Apache's event MPM as exported."""
    program = need_tool(NGINX if kind == "nginx" else APACHE, "nginx" if kind == "nginx" else "apache2")
    port = free_port()
    prefix = log_dir / f"{kind}-prefix"
    remove_tree(prefix)
    prefix.mkdir(parents=True)
    conf = mirror_config(snap, log_dir, kind, port, 0, htpasswd)
    text = subprocess.run(updmirror("export", kind, "-c", str(conf), "--prefix", str(prefix)), check=True,
                          capture_output=True, text=True, timeout=60).stdout
    (prefix / f"{kind}.conf").write_text(text)
    if kind == "nginx":
        cmd = [program, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;", "-e", "stderr"]
    else:
        cmd = [program, "-f", str(prefix / "apache.conf"), "-DFOREGROUND"]
    return Service(cmd, port=port, log=log_dir / f"{kind}.log")


def nginx(snap: Snapshot, log_dir: Path) -> Service:
    """nginx as the serving benchmarks' baseline: the configuration `updmirror export nginx` prints."""
    return exported("nginx", snap, log_dir)


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
        "apache": (lambda: exported("apache", snap, log_dir), True),
        "http.server": (lambda: floor(snap, log_dir), False),
    }
    unknown = [n for n in names if n not in table]
    if unknown:
        sys.exit(f"unknown server {unknown}; known: {', '.join(table)}")
    return {n: table[n] for n in names}


AGENTS = {t: user_agent(t) for t in ("ep11", "v16")}
