"""`updmirror export samba`: a read-only share for the read account, that Samba's testparm accepts."""

from __future__ import annotations

import subprocess

import pytest
from webkit import updmirror

from tools import require_tool

SHARE = "/srv/updmirror-share"


def parameter(conf, name: str, section: str = "eset_upd") -> str:
    done = subprocess.run(["testparm", "-s", "--suppress-prompt", f"--section-name={section}",
                           f"--parameter-name={name}", str(conf)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def testparm():
    require_tool("testparm", "apt-get install samba-common-bin")


def exported(m, tmp_path, **folder) -> tuple[str, object]:
    config = m.write_config(extra={"folder": {"path": SHARE, **folder}})
    text = updmirror("export", "samba", "-c", str(config)).stdout
    conf = tmp_path / "smb.conf"
    conf.write_text("[global]\n    workgroup = WORKGROUP\n    server role = standalone server\n\n" + text)
    return text, conf


def test_the_share_is_read_only_for_the_read_account_only(synced, tmp_path, testparm):
    text, conf = exported(synced, tmp_path)
    done = subprocess.run(["testparm", "-s", "--suppress-prompt", str(conf)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and "[eset_upd]" in done.stdout, done.stderr
    assert parameter(conf, "path") == SHARE
    assert parameter(conf, "read only") == "Yes"
    assert parameter(conf, "guest ok") == "No"
    assert parameter(conf, "write list") == ""
    assert parameter(conf, "valid users") == "noduser"
    assert parameter(conf, "veto files") == "/.updmirror*/"    # the publisher's record and files in progress
    assert "useradd --system --no-create-home --shell /usr/sbin/nologin noduser" in text
    assert "smbpasswd -a noduser" in text


def test_a_domain_account_is_named_as_such_and_needs_no_local_account(synced, tmp_path, testparm):
    text, conf = exported(synced, tmp_path, read_account="CORP\\ESET-Reader", share="updates")
    assert parameter(conf, "valid users", "updates") == "CORP\\ESET-Reader"
    assert "useradd" not in text and "member of" in text


def test_a_remote_share_has_no_samba_share_to_export(synced):
    config = synced.write_config(extra={"folder": {"unc": "\\\\files\\updates", "username": "CORP\\m",
                                                   "password": "x"}})
    done = updmirror("export", "samba", "-c", str(config), check=False)
    assert done.returncode == 2
    assert "[folder] unc is set" in done.stderr and "Traceback" not in done.stderr
