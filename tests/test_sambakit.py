"""The Samba server the shared-folder tests rely on is real and set up as they assume."""

import uuid

import pytest
import smbclient
from smbprotocol.exceptions import LogonFailure


def _session(samba, user, password):
    smbclient.reset_connection_cache()
    return smbclient.register_session(samba.host, username=f"{samba.domain}\\{user}",
                                      password=password, port=samba.port)


def test_read_account_reads_but_cannot_write(samba):
    name = f"probe-{uuid.uuid4().hex}.txt"
    (samba.share_dir / name).write_bytes(b"written on the server's disk")
    (samba.share_dir / name).chmod(0o644)
    try:
        _session(samba, samba.user, samba.password)
        with smbclient.open_file(rf"{samba.unc}\{name}", "rb", port=samba.port) as f:
            assert f.read() == b"written on the server's disk"
        with pytest.raises(OSError):
            with smbclient.open_file(rf"{samba.unc}\new-{name}", "wb", port=samba.port) as f:
                f.write(b"x")
    finally:
        (samba.share_dir / name).unlink()
        smbclient.reset_connection_cache()


def test_wrong_password_is_refused(samba):
    with pytest.raises(LogonFailure):
        _session(samba, samba.user, samba.password + "x")
    smbclient.reset_connection_cache()


def test_writer_account_writes(samba):
    if not samba.writer:
        pytest.skip("this Samba server has no writer account")
    name = f"probe-{uuid.uuid4().hex}.txt"
    _session(samba, samba.writer, samba.writer_password)
    try:
        with smbclient.open_file(rf"{samba.unc}\{name}", "wb", port=samba.port) as f:
            f.write(b"published over SMB")
        assert (samba.share_dir / name).read_bytes() == b"published over SMB"
    finally:
        (samba.share_dir / name).unlink(missing_ok=True)
        smbclient.reset_connection_cache()
