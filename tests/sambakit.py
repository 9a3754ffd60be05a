"""A real Samba server on loopback for the tests of shared folders (SMB).

CI starts one with ``../shared/tools/samba-loopback.sh start`` and exports its
``SMB_*`` settings (``.ci/run``); the tests then use that one. Without those
settings (a developer's machine), the session starts its own on a free port
under a temporary folder, with a read-only account (the clients' NODUSER)
and a writer account (a mirror publishing over SMB), and stops it at the end.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1].parent / "shared" / "tools" / "samba-loopback.sh"
WRITER = "mirrorwriter"


@dataclass(frozen=True)
class Samba:
    host: str
    port: int
    share: str
    share_dir: Path          # the shared folder on this machine
    domain: str
    user: str                # read-only account
    password: str
    writer: str | None       # account with write access, if the server has one
    writer_password: str | None

    @property
    def unc(self) -> str:
        return rf"\\{self.host}\{self.share}"

    @property
    def read_account(self) -> str:
        return rf"{self.domain}\{self.user}"

    @property
    def write_account(self) -> str:
        return rf"{self.domain}\{self.writer}"


def from_environment() -> Samba | None:
    """The server `.ci/run` started, if its settings are exported."""
    env = os.environ
    if not env.get("SMB_HOST") or not env.get("SMB_PORT"):
        return None
    return Samba(env["SMB_HOST"], int(env["SMB_PORT"]), env.get("SMB_SHARE", "eset_upd"),
                 Path(env["SMB_SHARE_DIR"]), env.get("SMB_DOMAIN", "WORKGROUP"),
                 env.get("SMB_USER", "noduser"), env.get("SMB_PASSWORD", "NodPass123"),
                 env.get("SMB_WRITER") or None, env.get("SMB_WRITER_PASSWORD") or None)


def why_not_startable() -> str | None:
    """None when this session can start its own server, else why not."""
    if not SCRIPT.is_file():
        return f"{SCRIPT} not found (the shared tools are not beside the checkout)"
    if os.geteuid() != 0:
        return "Samba tests need root to start smbd (not installed for this user)"
    if shutil.which("smbd") is None and shutil.which("apt-get") is None:
        return "smbd not installed and no apt-get to install it"
    return None


class OwnSamba:
    """A server started for this test session, stopped by `stop()`."""

    def __init__(self):
        # Not under pytest's temporary folders: those are 0700, and smbd serves
        # the share as the accounts' own users, who must be able to reach it.
        root = Path(tempfile.mkdtemp(prefix="updmirror-samba-"))
        root.chmod(0o755)
        self.root = root
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.env = dict(os.environ, SMB_ROOT=str(root), SMB_PORT=str(port), SMB_WRITER=WRITER)
        self.samba = Samba("127.0.0.1", port, "eset_upd", root / "share", "WORKGROUP",
                           "noduser", "NodPass123", WRITER, "PubPass123")

    def start(self) -> Samba:
        done = subprocess.run(["bash", str(SCRIPT), "start"], env=self.env, capture_output=True,
                              text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"samba-loopback.sh start failed: {done.stderr.strip()[-2000:]}")
        return self.samba

    def stop(self) -> None:
        subprocess.run(["bash", str(SCRIPT), "stop"], env=self.env, capture_output=True, timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)
