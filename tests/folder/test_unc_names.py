"""UNC paths and Windows account names as administrators write them."""

import pytest

from updmirror.unc import Account, Unc, parse_account, parse_unc


def test_unc_paths_in_either_slash():
    assert parse_unc(r"\\fileserver\updates") == Unc("fileserver", "updates")
    assert parse_unc(r"\\10.0.0.5\eset_upd\ep11\\") == Unc("10.0.0.5", "eset_upd", ("ep11",))
    assert parse_unc("//mirror/share/a/b") == Unc("mirror", "share", ("a", "b"))
    assert str(parse_unc(r"\\m\s\a")) == r"\\m\s\a"
    assert parse_unc(r"\\m\s\a").join("dll/update.ver") == r"\\m\s\a\dll\update.ver"


@pytest.mark.parametrize("text", [r"\\server", r"server\share", r"\\ser ver\s", r"\\s\..\x", r"\\s\a:b",
                                  "", r"\\s\a|b"])
def test_what_is_not_a_unc_path(text):
    with pytest.raises(ValueError):
        parse_unc(text)


@pytest.mark.parametrize("text,account", [
    (r"WORKGROUP\NODUSER", Account("WORKGROUP", "NODUSER")),
    (r"CORP\mirror-writer", Account("CORP", "mirror-writer")),
    ("reader@corp.example", Account("corp.example", "reader")),
    ("noduser", Account("", "noduser")),
])
def test_account_names(text, account):
    assert parse_account(text) == account
    assert str(parse_account(str(account))) == str(account)


@pytest.mark.parametrize("text", ["", "\\", r"D\\", r"D\a\b", r"bad domain\u", "u@", r"D\a*b"])
def test_what_is_not_an_account(text):
    with pytest.raises(ValueError):
        parse_account(text)
