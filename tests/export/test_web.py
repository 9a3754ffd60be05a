"""nginx and Apache from `updmirror export`, run on loopback against a synced
store: they check their configuration themselves, and answer clients as the
integrated server does, with and without authentication, through a
snapshot switch and its grace period."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest
from webkit import basic, check_config, get, need, self_signed, start, updmirror

from mirrorkit import assert_whole, listed_files
from serverkit import free_port
from tools import require_tool
from updmirror.eset.trees import TREES
from updmirror.serve.auth import set_password
from updmirror.store import Store

WEB = ("nginx", "apache")
CHANNELS = ("regular", "pre-release")
EP11 = "EEA Update (Windows; U; 64bit; BPC 11.0.2044.0; OS: 10.0.26100 SP 0.0 NT; TDB 0; CL 1.1.1)"
AGENTS = {
    "ep11": EP11,
    "ep8": "EES Update (Windows; U; 32bit; BPC 8.1.2037.0; OS: 6.1.7601 SP 1.0 NT)",
    "ep13": "EFSW Update (Windows; U; 64bit; BPC 13.0.1.0; OS: 10.0.20348)",
    "v16": "ESS Update (Windows; U; 64bit; BPC 16.0.22.0; OS: 10.0.19045 SP 0.0 NT; TDB 29123)",
    "v18": "EIS Update (Windows; U; 64bit; BPC 18.1.10.0; OS: 10.0.22631)",
    "v10": "ESS Update (Windows; U; 32bit; BPC 10.1.245.0; OS: 6.1.7601)",
    "v3": "NOD32 Update (Windows; BPC 3.0.684.0)",
    "leading-zero": "EEA Update (Windows; BPC 011.0.1)",
    "curl": "curl/8.5.0",
    "none": None,
}
SPREAD = (None, "domain=pre-release", "Domain = Pre-Release", "domain=deferred", "domain=production")


def agent_headers(agent: str | None, spread: str | None) -> dict[str, str]:
    headers = {} if agent is None else {"User-Agent": agent}
    if spread is not None:
        headers["Eset-Spread-Control"] = spread
    return headers


@pytest.fixture
def store(synced):
    synced.write_config(channels=CHANNELS)
    synced.sync()
    return synced


def configure(m, **http) -> Path:
    return m.write_config(channels=CHANNELS, extra={"http": {"workers": 1, **http}})


@pytest.mark.parametrize("server,variant", [(s, v) for s in WEB for v in ("full", "site", "auth", "tls")]
                         + [("apache", "auth-htaccess")])
def test_the_exported_configuration_passes_the_servers_own_check(store, server, variant, tmp_path):
    need(server)
    http = {"listen": ["127.0.0.1:2221", "[::1]:2221"]}
    if variant.startswith("auth"):
        set_password(tmp_path / "htpasswd", "client", "s3cret-Pass")
        http.update(auth="basic", htpasswd=str(tmp_path / "htpasswd"))
    if variant == "tls":
        cert, key = self_signed(tmp_path)
        http.update(tls_cert=str(cert), tls_key=str(key))
    config = configure(store, **http)
    args = ["--prefix", str(tmp_path)]
    if variant == "site":
        args.append("--site")
    if variant == "auth-htaccess":
        args.append("--htaccess")
    text = updmirror("export", server, "-c", str(config), *args).stdout
    conf = tmp_path / "site.conf"
    conf.write_text(text)
    if variant == "site":
        conf = wrap_site(server, conf, text, tmp_path)
    done = check_config(server, conf, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "syntax is ok" in done.stderr.lower() or "syntax ok" in (done.stdout + done.stderr).lower()


def wrap_site(server: str, site: Path, text: str, prefix: Path) -> Path:
    """A minimal main configuration that includes the site file, as a distribution's would."""
    main = prefix / "main.conf"
    if server == "nginx":
        main.write_text(f"pid {prefix}/nginx.pid;\nerror_log {prefix}/error.log;\nevents {{}}\n"
                        f"http {{\n    client_body_temp_path {prefix}/body;\n    include {site};\n}}\n")
        return main
    modules = re.search(r"it needs the modules ([a-z_, 0-9]+) \(a2enmod\)", text).group(1).split(", ")
    loads = "\n".join(f"LoadModule {m}_module /usr/lib/apache2/modules/mod_{m}.so" for m in modules)
    main.write_text(f"ServerRoot {prefix}\nPidFile {prefix}/apache.pid\nErrorLog {prefix}/error.log\n"
                    f"DefaultRuntimeDir {prefix}\nUser www-data\nGroup www-data\n"
                    f"LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so\n{loads}\n"
                    f"Include {site}\n")
    return main


def matrix(snap_tree: Path) -> list[tuple[str, dict[str, str]]]:
    requests = [(path, agent_headers(agent, spread))
                for path in ("/update.ver", "/dll/update.ver")
                for agent in AGENTS.values() for spread in SPREAD]
    for tree in ("ep11", "v16", "v5"):
        for channel in CHANNELS:
            for index in TREES[tree].index_paths(channel):
                requests.append(("/" + index, {}))
                for path, _size in listed_files((snap_tree / index).read_bytes(), index)[:3]:
                    requests.append((path, {}))
    requests += [("/no/such/file.nup", {}), ("/", {}), ("/eset_upd/", {}), ("/eset_upd/ep11", {}),
                 ("/manifest.json", {}), ("/../store/lock", {}),
                 ("/updmirror/manifest.json", {})]     # the manifest lower mirrors plan from
    return requests


@pytest.mark.parametrize("server", WEB)
def test_clients_get_the_integrated_servers_answers_by_user_agent_and_channel(store, server, tmp_path):
    need(server)
    ours_port, port = free_port(), free_port()
    config = configure(store, listen=[f"127.0.0.1:{ours_port}"])
    with start("ours", config, port=ours_port, prefix=tmp_path / "ours"), \
            start(server, config, port=port, extra=("--listen", f"127.0.0.1:{port}"),
                  prefix=tmp_path / server):
        compared = 0
        for path, headers in matrix(store.store.current().tree):
            want = get(ours_port, path, headers)
            got = get(port, path, headers)
            assert got.status == want.status, (path, headers, got.status, want.status)
            if want.status == 200:       # error pages are each server's own
                assert got.body == want.body, (path, headers)
            if path.endswith("update.ver") and path.count("/") <= 2 and want.status == 200:
                assert "user-agent" in got.headers.get("vary", "").lower(), (path, got.headers)
                assert got.headers["content-type"].startswith("text/plain")
            compared += want.status == 200
        assert compared > 60


def htpasswd_users(path: Path) -> dict[str, str]:
    """A file with the three kinds of entries the integrated server accepts."""
    require_tool("htpasswd", "apt-get install apache2-utils")
    set_password(path, "bcrypt-user", "pw-bcrypt-1")       # what 'updmirror passwd' writes
    subprocess.run(["htpasswd", "-bm", str(path), "apr1-user", "pw-apr1-2"], check=True, capture_output=True)
    subprocess.run(["htpasswd", "-bs", str(path), "sha-user", "pw-sha-3"], check=True, capture_output=True)
    text = path.read_text()
    assert re.search(r"^bcrypt-user:\$2b\$", text, re.M) and "apr1-user:$apr1$" in text and "{SHA}" in text
    return {"bcrypt-user": "pw-bcrypt-1", "apr1-user": "pw-apr1-2", "sha-user": "pw-sha-3"}


@pytest.mark.parametrize("server,extra", [("nginx", ()), ("apache", ()), ("apache", ("--htaccess",)),
                                          ("ours", ())], ids=["nginx", "apache", "apache-htaccess", "ours"])
def test_basic_authentication_from_the_same_htpasswd_file(store, server, extra, tmp_path):
    if server != "ours":
        need(server)
    # Beside the store, where the workers (www-data) can read it, as the exports' header asks.
    users = htpasswd_users(store.root / "htpasswd")
    port = free_port()
    config = configure(store, listen=[f"127.0.0.1:{port}"], auth="basic", htpasswd=str(store.root / "htpasswd"))
    if "--htaccess" in extra:
        text = updmirror("export", "htaccess", "-c", str(config)).stdout
        (store.store_root / ".htaccess").write_text(text)
    with start(server, config, port=port, extra=extra, prefix=tmp_path / server):
        headers = {"User-Agent": EP11}
        refused = get(port, "/dll/update.ver", headers)
        assert refused.status == 401 and refused.body != (store.store.current().tree /
                                                             "eset_upd/ep11/dll/update.ver").read_bytes()
        assert 'realm="updmirror"' in refused.headers["www-authenticate"]
        for user, password in users.items():
            ok = get(port, "/dll/update.ver", {**headers, **basic(user, password)})
            assert ok.status == 200, (user, ok.status)
            assert ok.body == (store.store.current().tree / "eset_upd/ep11/dll/update.ver").read_bytes()
            assert get(port, "/dll/update.ver", {**headers, **basic(user, password + "x")}).status == 401
        assert get(port, "/dll/update.ver", {**headers, **basic("nobody", "pw-sha-3")}).status == 401


@pytest.mark.parametrize("server,extra", [("nginx", ()), ("apache", ()), ("apache", ("--htaccess",)),
                                          ("ours", ())], ids=["nginx", "apache", "apache-htaccess", "ours"])
def test_the_same_network_allow_list(store, server, extra, tmp_path):
    if server != "ours":
        need(server)
    set_password(store.root / "htpasswd", "client", "s3cret-Pass")
    port = free_port()
    config = configure(store, listen=[f"127.0.0.1:{port}"], allow=["10.0.0.0/8", "fc00::/7"], auth="basic",
                       htpasswd=str(store.root / "htpasswd"))
    if "--htaccess" in extra:
        (store.store_root / ".htaccess").write_text(updmirror("export", "htaccess", "-c", str(config)).stdout)
    with start(server, config, port=port, extra=extra, prefix=tmp_path / server):
        for path in ("/dll/update.ver", "/eset_upd/ep11/dll/update.ver"):
            assert get(port, path, {"User-Agent": EP11, **basic("client", "s3cret-Pass")}).status == 403
            assert get(port, path, {"User-Agent": EP11}).status in (401, 403)


@pytest.mark.parametrize("server", WEB)
def test_tls_from_the_same_certificate(store, server, tmp_path):
    need(server)
    cert, key = self_signed(tmp_path)
    port = free_port()
    config = configure(store, listen=[f"127.0.0.1:{port}"], tls_cert=str(cert), tls_key=str(key))
    with start(server, config, port=port, prefix=tmp_path / server):
        answer = get(port, "/dll/update.ver", {"User-Agent": EP11}, tls=True)
        assert answer.status == 200
        assert answer.body == (store.store.current().tree / "eset_upd/ep11/dll/update.ver").read_bytes()


@pytest.mark.parametrize("server,name", [("nginx", "nginx"), ("apache", "Apache")])
def test_the_export_warns_that_the_server_checks_bcrypt_on_every_request(store, server, name):
    set_password(store.root / "htpasswd", "client", "s3cret-Pass")
    config = configure(store, auth="basic", htpasswd=str(store.root / "htpasswd"))
    done = updmirror("export", server, "-c", str(config))
    assert "hash on every request" in done.stdout
    assert f"warning: {name} checks the password hash on every request" in done.stderr


def test_the_switch_stays_atomic_and_old_files_stay_for_the_grace_period(mirror, tmp_path):
    """A client that read an index through nginx or Apache fetches every file it
    lists, through a real sync's snapshot switch and during the grace period."""
    for server in WEB:
        need(server)
    mirror.write_config(trees=("ep11",), grace="1h")
    mirror.sync()
    ports = {server: free_port() for server in WEB}
    index_path = "eset_upd/ep11/dll/update.ver"
    servers = [start(s, mirror.config_path, port=p, extra=("--listen", f"127.0.0.1:{p}"), prefix=tmp_path / s)
               for s, p in ports.items()]
    try:
        old_index = {s: get(p, "/dll/update.ver", {"User-Agent": EP11}) for s, p in ports.items()}
        before = (mirror.store.current().tree / index_path).read_bytes()
        assert all(a.status == 200 and a.body == before for a in old_index.values())
        old_files = listed_files(before, index_path)

        mirror.release()
        mirror.sync()     # the switch, and the sync's own clean-up within the grace period
        after = (mirror.store.current().tree / index_path).read_bytes()
        new_files = listed_files(after, index_path)
        only_old = sorted(set(old_files) - set(new_files))
        assert after != before and only_old
        for server, port in ports.items():
            assert get(port, "/dll/update.ver", {"User-Agent": EP11}).body == after
            for path, size in old_files + new_files:
                answer = get(port, path)
                assert answer.status == 200, (server, path)
                assert_whole(answer.body, size, f"{server} {path}")

        store = Store(mirror.store_root)
        store.retire_and_clean(3600, now=time.time() + 2 * 3600)      # the grace period is over
        for server, port in ports.items():
            for path, _size in only_old:
                assert get(port, path).status == 404, (server, path)
            for path, size in new_files:
                assert_whole(get(port, path).body, size, f"{server} {path}")
    finally:
        for s in servers:
            s.stop()


def test_the_htaccess_needs_authentication_to_put_in_it(store):
    done = updmirror("export", "htaccess", "-c", str(configure(store)), check=False)
    assert done.returncode == 2
    assert 'auth is "none"' in done.stderr and "Traceback" not in done.stderr


def test_the_routing_is_made_from_the_trees_table(store):
    text = updmirror("export", "nginx", "-c", str(configure(store))).stdout
    for tree in ("ep11", "v16", "v5"):
        for channel in CHANNELS:
            for index in TREES[tree].index_paths(channel):
                assert f" /{index};" in text
