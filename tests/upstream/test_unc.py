"""Reading UNC paths and Windows account names as users write them."""

import pytest

from updmirror.errors import ConfigError
from updmirror.upstream.unc import Account, ShareLocation, is_share, parse_account, parse_share


@pytest.mark.parametrize("text, expected", [
    (r"\\mirror\eset_upd", ShareLocation("mirror", "eset_upd")),
    (r"\\mirror\eset_upd\ep11\\", ShareLocation("mirror", "eset_upd", ("ep11",))),
    ("//10.0.0.5/share/a/b", ShareLocation("10.0.0.5", "share", ("a", "b"))),
    ("smb://nas:4450/share/sub%20dir/", ShareLocation("nas", "share", ("sub dir",), 4450)),
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


@pytest.mark.parametrize("text", [r"\\mirror", r"\\\share", r"\\mirror\share\..\x", r"\\mirror\sh:are",
                                  r"\\mir ror\share", "smb://user:secret@nas/share", "smb://nas:99999/share",
                                  "/srv/share", "http://mirror/share"])
def test_malformed_locations_are_refused_by_name(text):
    with pytest.raises(ConfigError) as caught:
        parse_share(text)
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize("text, expected", [
    (r"WORKGROUP\NODUSER", Account("NODUSER", "WORKGROUP")),
    (r"CORP\svc-eset", Account("svc-eset", "CORP")),
    ("noduser", Account("noduser")),
])
def test_accounts_are_read_with_or_without_a_domain(text, expected):
    assert parse_account(text) == expected
    assert str(parse_account(text)) == text


@pytest.mark.parametrize("text", ["", "\\user", "DOMAIN\\", r"A\B\C", "user:x", "DOM\\us*er"])
def test_malformed_accounts_are_refused(text):
    with pytest.raises(ConfigError):
        parse_account(text)
