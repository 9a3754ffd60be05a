"""[folder] in mirror.toml: validated in config.py, every error naming the key."""

from __future__ import annotations

import pytest

from updmirror import config
from updmirror.errors import ConfigError


def load(tmp_path, folder: str):
    path = tmp_path / "mirror.toml"
    path.write_text(f'[upstream]\nurl = "http://127.0.0.1:9/"\n[mirror]\nroot = "{tmp_path / "store"}"\n'
                    f"[folder]\n{folder}\n")
    return config.load(path)


def test_without_path_or_unc_there_is_no_shared_folder(tmp_path):
    cfg = load(tmp_path, 'layout = "vendor"')
    assert not cfg.folder.enabled and cfg.folder.layout == "vendor"


def test_a_local_folder(tmp_path):
    cfg = load(tmp_path, 'path = "share"')
    assert cfg.folder.enabled and cfg.folder.path == tmp_path / "share"
    assert (cfg.folder.layout, cfg.folder.share, cfg.folder.read_account) == ("flat", "eset_upd", "WORKGROUP\\NODUSER")


def test_a_remote_share_reads_its_password_file_and_keeps_it_out_of_repr(tmp_path):
    (tmp_path / "share.pass").write_text("Writer-Pw-1\n")
    cfg = load(tmp_path, 'unc = "\\\\\\\\files\\\\updates\\\\eset"\nusername = "CORP\\\\mirror"\n'
                         'password_file = "share.pass"\nport = 4450')
    assert cfg.folder.password == "Writer-Pw-1" and cfg.folder.port == 4450
    assert cfg.folder.unc == "\\\\files\\updates\\eset"
    assert "Writer-Pw-1" not in repr(cfg)


@pytest.mark.parametrize("text,message", [
    ('path = "a"\nunc = "\\\\\\\\h\\\\s"', r"\[folder\] unc: give either path"),
    ('unc = "//h"', r"\[folder\] unc: .* names no share"),
    ('unc = "files\\\\updates"', r"\[folder\] unc: .* is not a UNC path"),
    ('unc = "\\\\\\\\h\\\\s"', r"\[folder\] username: a remote share \(unc\) needs username"),
    ('unc = "\\\\\\\\h\\\\s"\nusername = "D\\\\u"', r"\[folder\] password: a remote share"),
    ('path = "a"\nlayout = "tree"', r"\[folder\] layout: 'tree' is not one of: flat, vendor"),
    ('path = "a"\nshare = "a/b"', r"\[folder\] share: 'a/b' is not a valid share name"),
    ('path = "a"\nread_account = "D\\\\"', r"\[folder\] read_account: .* is not an account name"),
    ('path = "a"\nport = 0', r"\[folder\] port: must be 1 to 65535, not 0"),
    ('path = "store/current"', r"\[folder\] path: .* overlaps the store"),
    ('path = "a"\nlayuot = "flat"', r"\[folder\] layuot: unknown key"),
])
def test_bad_values_name_the_key(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, text)
