"""How long a release takes from the vendor to the third tier: vendor -> A -> B -> C.

    python bench/tiers_propagation.py                 # 3 releases per mode (~2 min once set up)
    python bench/tiers_propagation.py --releases 5

Set-up: the simulated vendor (seed 7, 4 MiB, tree ep11; generated once under WORK and copied per
run, since each release changes it) served by `updmirror vendor serve`; A, B and C are each an
`updmirror run` daemon (the default two workers, Basic authentication with credentials of their
own), each syncing from the one above. All on this machine's two cores.

A release: the vendor publishes its next build, then `updmirror sync -c A` runs at once (the
vendor announces nothing: its first tier learns of a release by its schedule or by hand, the same
in both modes). The clock starts before the vendor publishes and stops when C's tier manifest
names the release's index version; B's time is taken the same way.

Modes, side by side on the same vendor and releases:

- announce: B and C at the default interval of an hour, learning of each upper snapshot by its
  announcements ([upstream] announce = "auto", announce_jitter at its default of 2 s);
- poll 5s: B and C with [mirror] interval = "5s" and announcements off: the baseline the issue
  measured ("with a 5-second interval, a release reached C in about 10 s").

Polling at the default interval of an hour is not run: each hop then waits up to an hour (three
hours to C), which is what announcements are for.
"""

from __future__ import annotations

import argparse
import subprocess
import time
from pathlib import Path

from common import (
    WORK,
    Service,
    copy_tree_linked,
    free_port,
    get_json,
    machine_line,
    remove_tree,
    stats,
    table,
    updmirror,
    use_repo_sources,
    write_htpasswd,
)

use_repo_sources()

from sync_vendor import (  # noqa: E402
    PASSWORD,
    USER,
    cached_vendor,
    fingerprint,
    legacy_key_id,
    vendor_server,
    write_mirror_config,
)

INDEX = "eset_upd/ep11/dll/update.ver"
HERE = WORK / "tiers-propagation"


class Tier:
    def __init__(self, name: str, root: Path, upstream: str, user: str, password: str, vendor: Path,
                 mode: str):
        self.name, self.root = name, root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.user, self.password = f"lower-of-{name}", f"pw-{name}-bench"
        root.mkdir(parents=True)
        write_htpasswd(root / "htpasswd", self.user, self.password)
        polling = mode == "poll 5s" and name != "A"
        self.config = write_mirror_config(
            root / "mirror.toml", url=upstream, store=root / "store", trees=["ep11"], channels=["regular"],
            signing_key=fingerprint(vendor), legacy_key_id=legacy_key_id(vendor), username=user,
            password=password,
            extra={"upstream": [f'announce = "{"off" if polling else "auto"}"'],
                   "mirror": [f'name = "{name}"', f'interval = "{"5s" if polling else "1h"}"'],
                   "http": [f'listen = ["127.0.0.1:{self.port}"]', 'auth = "basic"',
                            f'htpasswd = "{root / "htpasswd"}"']})
        self.service = Service(updmirror("-q", "run", "-c", str(self.config)), port=self.port,
                               log=root / "run.log")

    def version(self):
        """The ep11 index version this tier's manifest names; None when it has none yet."""
        try:
            manifest = get_json(self.url + "updmirror/manifest.json", self.user, self.password, timeout=5)
        except (OSError, ValueError):
            return None
        return next((i["versionid"] for i in manifest["indexes"] if i["path"] == INDEX), None)


def wait_for(predicate, timeout: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic()
        time.sleep(0.02)
    return None


def run_mode(mode: str, pristine: Path, releases: int) -> list[tuple[float, float, float]]:
    """(A's sync, vendor -> B, vendor -> C) seconds per release."""
    work = HERE / mode.replace(" ", "-")
    remove_tree(work)
    work.mkdir(parents=True)
    vendor = work / "vendor"
    copy_tree_linked(pristine, vendor)
    vendor_service, vendor_url = vendor_server(vendor, work / "vendor.log")
    tiers: list[Tier] = []
    results = []
    with vendor_service:
        url, user, password = vendor_url, USER, PASSWORD
        for name in ("A", "B", "C"):
            tiers.append(Tier(name, work / name, url, user, password, vendor, mode))
            url, user, password = tiers[-1].url, tiers[-1].user, tiers[-1].password
        try:
            for tier in tiers:
                tier.service.start()
            a, b, c = tiers
            # Each starts empty and syncs at once; C has the first release when it names A's version.
            # Versions only grow, and each reading may reach another worker: a release has
            # arrived when a tier names a version above the last one seen (never a second
            # reading compared with the first, which an unswitched worker could answer).
            seen: list[int] = []
            if wait_for(lambda: (v := a.version()) is not None and c.version() == v and not seen.append(v),
                        120) is None:
                raise SystemExit(f"{mode}: the first release did not reach C; see {work}/*/run.log")
            last = seen[-1]
            for n in range(releases):
                started = time.monotonic()
                subprocess.run(updmirror("vendor", "publish", "--root", str(vendor)), check=True,
                               stdout=subprocess.DEVNULL)
                subprocess.run(updmirror("-q", "sync", "-c", str(a.config)), check=True, stdout=subprocess.DEVNULL)
                a_done = time.monotonic()
                at_b = at_c = None
                while (at_b is None or at_c is None) and time.monotonic() - started < 60:
                    now = time.monotonic()
                    if at_b is None and (b.version() or 0) > last:
                        at_b = now
                    if at_c is None and (v := c.version() or 0) > last:
                        at_c, reached = now, v
                    time.sleep(0.02)
                if at_b is None or at_c is None:
                    raise SystemExit(f"{mode}: release {n + 2} did not reach C in 60 s; see {work}/*/run.log")
                last = reached
                results.append((a_done - started, at_b - started, at_c - started))
                print(f"  {mode}: release {n + 2}: A synced in {a_done - started:.2f} s, at B after "
                      f"{at_b - started:.2f} s, at C after {at_c - started:.2f} s", flush=True)
                time.sleep(1.0)
        finally:
            for tier in reversed(tiers):
                tier.service.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--releases", type=int, default=3)
    args = parser.parse_args()
    print(machine_line())
    pristine = cached_vendor(7, 4, ["ep11"])
    measured = {}
    for mode in ("announce", "poll 5s"):
        measured[mode] = run_mode(mode, pristine, args.releases)
    rows = []
    for mode, runs in measured.items():
        a, b, c = (stats(r[i] for r in runs) for i in range(3))
        rows.append([mode, a.show(unit=" s"), b.show(unit=" s"), c.show(unit=" s"), len(runs)])
    print()
    print(table(["mode", "vendor publish + A's sync", "vendor -> B", "vendor -> C", "releases"], rows))
    ann = stats(r[2] for r in measured["announce"]).median
    poll = stats(r[2] for r in measured["poll 5s"]).median
    print(f"\nvendor -> C, median: announce {ann:.2f} s, poll every 5 s {poll:.2f} s: "
          f"{poll / ann:.2f}x faster with announcements, at an interval of an hour instead of 5 s")


if __name__ == "__main__":
    main()
