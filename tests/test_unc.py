"""UNC paths, smb:// URLs and Windows account names as administrators write them (unc.py)."""

import pytest

from updmirror.errors import ConfigError
from updmirror.unc import Account, ShareLocation, is_share, parse_account, parse_share


@pytest.mark.parametrize("text, expected", [
    (r"\\fileserver\updates", ShareLocation("fileserver", "updates")),
    (r"\\mirror\eset_upd\ep11\\", ShareLocation("mirror", "eset_upd", ("ep11",))),
    (r"\\10.0.0.5\eset_upd\ep11\\", ShareLocation("10.0.0.5", "eset_upd", ("ep11",))),
    ("//mirror/share/a/b", ShareLocation("mirror", "share", ("a", "b"))),
    ("smb://nas:4450/share/sub%20dir/", ShareLocation("nas", "share", ("sub dir",), 4450)),
    ("smb://[fd00::5]/share", ShareLocation("fd00::5", "share")),
])
def test_share_locations_are_read_in_every_form(text, expected):
    assert parse_share(text) == expected
    assert is_share(text)


def test_a_location_is_written_back_as_unc_and_as_a_url_with_its_port():
    where = parse_share(r"\\nas\share\sub dir", port=4450)
    assert where.unc == r"\\nas\share\sub dir"
    assert where.url == "smb://nas:4450/share/sub%20dir/"
    assert parse_share(where.url) == where
    assert parse_share(r"\\nas\share").url == "smb://nas/share/"
    assert parse_share(r"\\m\s\a").unc == r"\\m\s\a"
    assert parse_share(r"\\m\s\a").join("dll/update.ver") == r"\\m\s\a\dll\update.ver"


@pytest.mark.parametrize("text", [r"\\mirror", r"\\\share", r"\\mirror\share\..\x", r"\\mirror\sh:are",
                                  r"\\mir ror\share", "smb://user:secret@nas/share", "smb://nas:99999/share",
                                  "/srv/share", "http://mirror/share", r"server\share", r"\\s\a|b", "",
                                  r"\\s\a\\b"])
def test_malformed_locations_are_refused_by_name(text):
    with pytest.raises(ConfigError) as caught:
        parse_share(text)
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize("text,account", [
    (r"WORKGROUP\NODUSER", Account("WORKGROUP", "NODUSER")),
    (r"CORP\mirror-writer", Account("CORP", "mirror-writer")),
    (r"CORP\svc-eset", Account("CORP", "svc-eset")),
    ("reader@corp.example", Account("corp.example", "reader")),
    ("noduser", Account("", "noduser")),
])
def test_account_names(text, account):
    assert parse_account(text) == account
    assert str(parse_account(str(account))) == str(account)


@pytest.mark.parametrize("text", ["", "\\", "\\user", "DOMAIN\\", r"D\\", r"D\a\b", r"bad domain\u", "u@",
                                  r"D\a*b", "user:x", "DOM\\us*er"])
def test_what_is_not_an_account(text):
    with pytest.raises(ConfigError):
        parse_account(text)
