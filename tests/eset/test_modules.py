import pytest

from updmirror.errors import FormatError, UnsafePathError
from updmirror.eset.modules import Selection, database_version, modules, normalise_path, select
from updmirror.eset.updatever import UpdateVer

INDEX_URL = "http://update.eset.com/eset_upd/ep11/dll/update.ver"


def index(*sections: str) -> UpdateVer:
    return UpdateVer.parse("".join(sections).encode())


def section(name, file, **keys):
    body = "".join(f"{k}={v}\r\n" for k, v in keys.items())
    return f"[{name}]\r\n{body}file={file}\r\nsize=10\r\n"


def test_the_three_file_forms_resolve_against_the_index_url():
    doc = index(
        section("A0", "/endpointwindowslatest-rel-sta/mod_001_a_1/em001_64_l0.dll.nup"),
        section("B0", "em002_64_l0.dll.nup"),
        section("C0", "http://update.eset.com/x/em003.nup"),
    )
    a, b, c = modules(doc, INDEX_URL)
    assert a.path == "/endpointwindowslatest-rel-sta/mod_001_a_1/em001_64_l0.dll.nup"
    assert a.url == "http://update.eset.com/endpointwindowslatest-rel-sta/mod_001_a_1/em001_64_l0.dll.nup"
    assert b.path == "/eset_upd/ep11/dll/em002_64_l0.dll.nup"
    assert c.url == "http://update.eset.com/x/em003.nup" and c.path == "/x/em003.nup"


def test_non_module_sections_are_not_modules():
    doc = index("[HOSTS]\r\nOther=1@http://x/\r\n", "[PCUVER]\r\nfile=x\r\n", "[Expire]\r\ndate=1\r\n",
                section("A0", "/a/b.nup"))
    assert [m.section for m in modules(doc, INDEX_URL)] == ["A0"]


def test_module_fields_are_read():
    doc = index(section("LOADER640", "/p/m/e.nup", versionid="7863", build="15243", type="loader64",
                        level="1", base="15000", platform="x64", language="1049"),
                section("CONTINUOUS_PERSEUS2", "/p/c/e.nup", type="perseus", build="7"))
    m, c = modules(doc, INDEX_URL)
    assert (m.type, m.level, m.base, m.platform, m.language, m.size) == ("loader64", 1, 15000, "x64", 1049, 10)
    assert c.continuous and c.level is None
    assert database_version([m, c]) == 7863


@pytest.mark.parametrize("file", [
    "/a/../../etc/passwd", "../x.nup", "a/./b.nup", "/a/%2e%2e/b.nup", "/a/%252e%252e/b",
    "/a/%2F/b.nup", "\\\\evil\\share\\x", "/a/b\x00.nup", "http://evil.example/a.nup",
    "//evil.example/a.nup", "file:///etc/passwd", "/" + "a" * 600, "/a/b c.nup", "/a/%ff.nup",
])
def test_files_that_would_leave_the_repository_are_refused(file):
    doc = index(f"[EVIL0]\r\nfile={file}\r\n") if "\x00" not in file else None
    if doc is None:
        from updmirror.eset.modules import resolve_file
        with pytest.raises(UnsafePathError):
            resolve_file(file, INDEX_URL, set(), "x [EVIL0]")
        return
    with pytest.raises(UnsafePathError, match=r"\[EVIL0\]"):
        modules(doc, INDEX_URL)


@pytest.mark.parametrize("file, path", [
    ("/a//b.nup", "/a/b.nup"), ("/v3-rel-sta///m//em.nup", "/v3-rel-sta/m/em.nup"), ("m//em.nup", "/eset_upd/ep11/dll/m/em.nup"),
])
def test_repeated_slashes_in_a_file_path_are_merged_not_refused(file, path):
    (m,) = modules(index(section("A0", file)), INDEX_URL)
    assert m.path == path


@pytest.mark.parametrize("raw, merged", [
    ("//dll/update.ver", "/dll/update.ver"), ("//v3-rel-sta/m/em.nup", "/v3-rel-sta/m/em.nup"),
    ("/eset_upd//ep11///dll/update.ver", "/eset_upd/ep11/dll/update.ver"), ("/a/b", "/a/b"),
])
def test_the_normaliser_merges_repeated_slashes(raw, merged):
    assert normalise_path(raw, "request") == merged


@pytest.mark.parametrize("raw", ["//../etc/passwd", "/a//..//..//b", "/a/%2F%2F/b", "//%2e%2e/x", "///"])
def test_merging_slashes_lets_no_unsafe_spelling_through(raw):
    with pytest.raises(UnsafePathError):
        normalise_path(raw, "request")


def test_another_host_is_accepted_when_allowed():
    doc = index(section("A0", "http://um02.eset.com/a/b.nup"))
    (m,) = modules(doc, INDEX_URL, allowed_hosts=["um02.eset.com"])
    assert m.url == "http://um02.eset.com/a/b.nup" and m.path == "/a/b.nup"


def test_a_bad_number_is_a_format_error_naming_the_section():
    doc = index(section("A0", "/a/b.nup", size="12x"))
    with pytest.raises(FormatError, match=r"\[A0\].*size"):
        modules(doc, INDEX_URL)


def test_filters_by_platform_language_and_type():
    doc = index(
        section("A0", "/a/1.nup", type="perseus", platform="x86"),
        section("A640", "/a/2.nup", type="perseus64", platform="x64"),
        section("L0", "/a/3.nup", type="lang", platform="x64", language="1049"),
        section("L1", "/a/4.nup", type="lang", platform="x64", language="1033"),
        section("G0", "/a/5.nup", type="generic"),
    )
    mods = modules(doc, INDEX_URL)
    got = select(mods, Selection(platforms=("x64",), languages=(1033,)))
    assert [m.section for m in got] == ["A640", "L1", "G0"]
    assert [m.section for m in select(mods, Selection(types=("lang",)))] == ["L0", "L1"]
    assert len(select(mods, Selection())) == 5


def test_a_repository_under_a_path_prefix_keeps_paths_relative_to_its_root():
    root = "http://proxy.example/eset/"
    url = root + "eset_upd/ep11/dll/update.ver"
    doc = index(section("A0", "/p/m/a.nup"), section("B0", "b.nup"),
                section("C0", "http://proxy.example/eset/p/c.nup"))
    a, b, c = modules(doc, url, root_url=root)
    assert (a.url, a.path) == ("http://proxy.example/eset/p/m/a.nup", "/p/m/a.nup")
    assert (b.url, b.path) == ("http://proxy.example/eset/eset_upd/ep11/dll/b.nup", "/eset_upd/ep11/dll/b.nup")
    assert c.path == "/p/c.nup"


def test_a_folder_repository_resolves_inside_the_folder():
    root = "file:///srv/share/"
    (m,) = modules(index(section("A0", "/p/m/a.nup")), root + "eset_upd/v5/update.ver", root_url=root)
    assert (m.url, m.path) == ("file:///srv/share/p/m/a.nup", "/p/m/a.nup")


# -- the same host is the same origin: scheme, host and port ----------------------------
REAL_STYLE_FILE = "/v11-rel-sta/mod_018_perseus_2165/em002_64_l0.nup"   # ../shared/fixtures/vendor-real style


@pytest.mark.parametrize("file", [
    f"http://update.eset.com{REAL_STYLE_FILE}",
    f"http://UPDATE.eset.com:80{REAL_STYLE_FILE}",     # the implied port, written out
])
def test_a_full_url_on_the_index_origin_is_the_same_host(file):
    (m,) = modules(index(section("A0", file)), INDEX_URL)
    assert m.path == REAL_STYLE_FILE and m.url == file


@pytest.mark.parametrize("file", [
    f"http://update.eset.com:8080{REAL_STYLE_FILE}",   # another port: another server
    f"https://update.eset.com{REAL_STYLE_FILE}",       # another scheme (and port)
    f"http://update.eset.com:443{REAL_STYLE_FILE}",
])
def test_the_index_host_on_another_port_or_scheme_is_another_server(file):
    with pytest.raises(UnsafePathError, match="another server .* allowed hosts"):
        modules(index(section("A0", file)), INDEX_URL)


def test_another_origin_of_an_allowed_host_is_accepted():
    file = f"https://update.eset.com:8443{REAL_STYLE_FILE}"
    (m,) = modules(index(section("A0", file)), INDEX_URL, allowed_hosts=["update.eset.com"])
    assert m.url == file and m.path == REAL_STYLE_FILE


def test_a_repository_under_a_path_prefix_strips_it_only_on_its_own_origin():
    root = "http://mirror.lan:2221/eset/"
    url = "http://mirror.lan:2221/eset/eset_upd/ep11/dll/update.ver"
    (m,) = modules(index(section("A0", f"http://mirror.lan:2221/eset{REAL_STYLE_FILE}")), url, root_url=root)
    assert m.path == REAL_STYLE_FILE
    with pytest.raises(UnsafePathError, match="another server"):
        modules(index(section("A0", f"http://mirror.lan:2222/eset{REAL_STYLE_FILE}")), url, root_url=root)


@pytest.mark.parametrize("file", [
    f"http://EAV-0123:Secret-Pw@update.eset.com{REAL_STYLE_FILE}",
    f"http://EAV-0123@update.eset.com{REAL_STYLE_FILE}",
    f"http://EAV-0123:Secret-Pw@um02.eset.com{REAL_STYLE_FILE}",
])
def test_credentials_in_a_file_url_are_refused_without_showing_them(file):
    with pytest.raises(UnsafePathError, match=r"holds credentials \(user:password@\)") as caught:
        modules(index(section("A0", file)), INDEX_URL, allowed_hosts=["um02.eset.com"])
    assert "Secret-Pw" not in str(caught.value) and "EAV-0123" not in str(caught.value)


def test_a_bad_port_in_a_file_url_is_refused_by_name():
    with pytest.raises(UnsafePathError, match="port that is not a number"):
        modules(index(section("A0", f"http://update.eset.com:99999{REAL_STYLE_FILE}")), INDEX_URL)


def test_the_real_vendor_index_with_full_urls_resolves_on_its_own_origin_only():
    """The real index's file names, written as full URLs: on the index's origin
    each is the path its bare name gives; on another port of the same host, none is taken."""
    import vendor_real

    raw = (vendor_real.FOLDER / vendor_real.INDEX).read_bytes()
    url = "http://mirror.lan:2221/eset_upd/v16/update.ver"
    bare = modules(UpdateVer.parse(raw), url)
    assert len(bare) > 10
    full = raw.replace(b"\nfile=", b"\nfile=http://mirror.lan:2221/eset_upd/v16/")
    assert [m.path for m in modules(UpdateVer.parse(full), url)] == [m.path for m in bare]
    elsewhere = raw.replace(b"\nfile=", b"\nfile=http://mirror.lan:2222/eset_upd/v16/")
    with pytest.raises(UnsafePathError, match="another server"):
        modules(UpdateVer.parse(elsewhere), url)
