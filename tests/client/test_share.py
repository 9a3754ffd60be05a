"""Shares as sources: a mirror's files on the real Samba server, read over SMB with DOMAIN\\User."""

from __future__ import annotations

import shutil
import uuid

import pytest
from clientkit import cli, endpoint, product_mirror_layout, source, state, update

from updmirror.client import installed
from updmirror.errors import ConfigError


@pytest.fixture
def shared(samba):
    """A folder of the share holding what `fill(path)` puts there, readable by the share's account."""
    made = []

    def fill(layout) -> str:
        name = f"client-{uuid.uuid4().hex[:10]}"
        path = samba.share_dir / name
        layout(path)
        for p in [path, *path.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
        made.append(path)
        return rf"\\{samba.host}\{samba.share}\{name}"

    yield fill
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


def on_share(samba, unc: str, password: str | None = None):
    return source(unc, user=samba.read_account, password=password or samba.password, smb_port=samba.port)


def test_a_share_laid_out_like_the_vendor_installs_like_over_http(releases, samba, shared, tmp_path):
    unc = shared(lambda p: shutil.copytree(releases.second / "www", p))
    result = update(tmp_path / "smb", [on_share(samba, unc)], endpoint(releases))
    with releases.serve(releases.second) as vendor:
        update(tmp_path / "http", [source(vendor.url)], endpoint(releases))
    assert result.status == "updated" and result.source == f"{unc} (port {samba.port})"
    assert state(tmp_path / "smb") == state(tmp_path / "http")


def test_a_share_laid_out_like_a_products_mirror_is_read_from_its_root(releases, samba, shared, tmp_path):
    unc = shared(lambda p: product_mirror_layout(releases.second / "www", "eset_upd/ep11/dll/update.ver", p))
    result = update(tmp_path / "smb", [on_share(samba, unc)], endpoint(releases))
    with releases.serve(releases.second) as vendor:
        update(tmp_path / "http", [source(vendor.url)], endpoint(releases))
    assert result.status == "updated" and state(tmp_path / "smb") == state(tmp_path / "http")


def test_a_share_refusing_the_password_fails_over_cleanly(releases, samba, shared, tmp_path):
    unc = shared(lambda p: shutil.copytree(releases.second / "www", p))
    wrong = samba.password + "-old"
    with releases.serve(releases.second) as vendor:
        result = update(tmp_path / "av", [on_share(samba, unc, wrong), source(vendor.url)], endpoint(releases))
    assert result.source == vendor.url.rstrip("/")
    [failure] = result.failures
    assert failure.cause == "credentials" and samba.read_account in failure.message
    assert wrong not in failure.message and installed(tmp_path / "av").source == vendor.url.rstrip("/")


def test_on_the_command_line_a_refused_share_is_one_clear_error_and_exit_1(releases, samba, shared, tmp_path):
    unc = shared(lambda p: shutil.copytree(releases.second / "www", p))
    secret = "Wr0ng-" + uuid.uuid4().hex[:6]
    (tmp_path / "pw").write_text(secret + "\n")
    done = cli("client", "update", "--source", unc, "--smb-port", str(samba.port), "--tree", "ep11",
               "--dest", str(tmp_path / "av"), "--user", samba.read_account, "--password-file",
               str(tmp_path / "pw"), "--signing-key", releases.fingerprint, "--timeout", "5")
    assert done.returncode == 1, done.stderr
    assert "refused the credentials" in done.stderr and unc in done.stderr
    assert "Traceback" not in done.stderr and secret not in done.stdout + done.stderr
    assert installed(tmp_path / "av").id is None


def test_a_share_without_an_account_is_refused_before_any_connection(samba):
    with pytest.raises(ConfigError, match="needs an account"):
        source(rf"\\{samba.host}\{samba.share}", user=None)
