"""The shared folder over SMB, with a real Samba server on loopback: clients
read it with the read-only account, and the mirror can write a remote share."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import smbclient
from smbprotocol.exceptions import LogonFailure

from mirrorkit import assert_whole, listed_files
from serverkit import SRC
from updmirror.errors import FolderError
from updmirror.folder import publish_configured
from updmirror.folder.targets import SmbFolder


@pytest.fixture
def subfolder(samba):
    """A folder of its own inside the share (the session shares one server)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    yield name
    shutil.rmtree(samba.share_dir / name, ignore_errors=True)
    smbclient.reset_connection_cache()


def login(samba, user: str, password: str) -> None:
    smbclient.reset_connection_cache()
    smbclient.register_session(samba.host, username=f"{samba.domain}\\{user}", password=password,
                               port=samba.port)


def read(samba, unc: str) -> bytes:
    with smbclient.open_file(unc, mode="rb", port=samba.port) as f:
        return f.read()


def update_over_smb(samba, folder_unc: str, index_rel: str) -> dict[str, bytes]:
    """What a client does: read the index, then every file it lists (bare names,
    beside the index); each must be whole. Returns the files by their UNC path."""
    index = read(samba, folder_unc + "\\" + index_rel.replace("/", "\\"))
    got = {}
    for path, size in listed_files(index, index_rel):
        unc = folder_unc + path.replace("/", "\\")
        data = read(samba, unc)
        assert_whole(data, size, unc)
        got[unc] = data
    assert got
    return got


def test_clients_update_from_the_folder_over_smb_with_the_read_account(synced, samba, subfolder):
    share = samba.share_dir / subfolder
    synced.write_config(trees=("ep11",), extra={"folder": {"path": str(share)}})
    synced.sync()
    publish_configured(synced.cfg())
    login(samba, samba.user, samba.password)
    files = update_over_smb(samba, f"{samba.unc}\\{subfolder}", "dll/update.ver")
    for unc, data in files.items():
        local = share / unc.split(subfolder + "\\", 1)[1].replace("\\", "/")
        assert local.read_bytes() == data
    with pytest.raises(OSError):     # the clients' account only reads
        with smbclient.open_file(f"{samba.unc}\\{subfolder}\\dll\\update.ver", mode="wb", port=samba.port) as f:
            f.write(b"[HOSTS]\r\n")


def test_a_wrong_password_fails_cleanly(synced, samba, subfolder):
    with pytest.raises(LogonFailure):
        login(samba, samba.user, samba.password + "x")
    smbclient.reset_connection_cache()
    folder = SmbFolder(f"{samba.unc}\\{subfolder}", samba.read_account, samba.password + "x", samba.port)
    with pytest.raises(FolderError) as caught:
        folder.open()
    message = str(caught.value)
    assert "refused the account" in message and samba.read_account in message
    assert samba.password not in message


@pytest.fixture
def writer(samba):
    if not samba.writer:
        pytest.skip("this Samba server has no writer account (SMB_WRITER)")
    return samba


def remote_config(m, samba, subfolder: str, password: str | None = None) -> Path:
    return m.write_config(trees=("ep11",), extra={"folder": {
        "unc": f"\\\\{samba.host}\\{samba.share}\\{subfolder}", "username": samba.write_account,
        "password": password or samba.writer_password, "port": samba.port}})


def test_the_mirror_publishes_to_a_remote_share_over_smb_keeping_old_files_for_the_grace(
        synced, writer, subfolder):
    samba = writer
    remote_config(synced, samba, subfolder)
    synced.sync()
    first = publish_configured(synced.cfg())
    assert first.copied > 0 and first.indexes_replaced == 1
    folder_unc = f"{samba.unc}\\{subfolder}"
    login(samba, samba.user, samba.password)
    old_index = read(samba, folder_unc + "\\dll\\update.ver")
    old = update_over_smb(samba, folder_unc, "dll/update.ver")

    synced.release()
    synced.sync()
    second = publish_configured(synced.cfg())
    assert second.indexes_replaced == 1 and second.kept > 0
    login(samba, samba.user, samba.password)
    assert read(samba, folder_unc + "\\dll\\update.ver") != old_index
    update_over_smb(samba, folder_unc, "dll/update.ver")
    for unc, data in old.items():       # a client that read the old index can still finish
        assert read(samba, unc) == data
    on_disk = samba.share_dir / subfolder
    assert not list(on_disk.rglob(".updmirror-*.part"))
    for p in on_disk.rglob("*"):       # what the server's masks make of them: readable by all
        assert stat.S_IMODE(p.stat().st_mode) & 0o444 == 0o444, p


def test_a_wrong_writer_password_fails_the_command_with_one_clear_line(synced, writer, subfolder):
    config = remote_config(synced, writer, subfolder, password="not-the-password")
    synced.sync()
    done = subprocess.run([sys.executable, "-m", "updmirror", "folder", "publish", "-c", str(config)],
                          capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=SRC), timeout=120)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "refused the account" in lines[0], done.stderr
    assert "not-the-password" not in done.stderr + done.stdout
