"""`updmirror client update` on the command line: exit codes, messages, and no credential ever shown."""

from __future__ import annotations

import json

from clientkit import PASSWORD, USER, RunningUpdate, cli, closed_port


def args(releases, dest, *sources, extra=()):
    out = ["client", "update", "--tree", "ep11", "--dest", str(dest), "--signing-key", releases.fingerprint,
           "--timeout", "3"]
    for s in sources:
        out += ["--source", *([s] if isinstance(s, str) else s)]
    return [*out, *extra]


def test_an_update_prints_one_summary_and_json_on_request(releases, tmp_path):
    with releases.serve(releases.second) as vendor:
        done = cli(*args(releases, tmp_path / "av", vendor.url, extra=("--user", USER, "--password-file", "-")),
                   stdin=PASSWORD + "\n")
        again = cli(*args(releases, tmp_path / "av", vendor.url,
                          extra=("--user", USER, "--password-file", "-", "--json")), stdin=PASSWORD)
    assert done.returncode == 0, done.stderr
    assert "updated to database version" in done.stdout and "files" in done.stdout
    result = json.loads(again.stdout)
    assert again.returncode == 0 and result["status"] == "current" and result["failures"] == []
    assert PASSWORD not in done.stdout + done.stderr + again.stdout + again.stderr
    status = cli("client", "status", "--dest", str(tmp_path / "av"))
    assert status.returncode == 0 and "ep11 x64, database version" in status.stdout


def test_no_source_working_is_exit_1_naming_each_source_and_what_to_check(releases, tmp_path):
    down = [f"http://127.0.0.1:{closed_port()}", f"http://127.0.0.1:{closed_port()}"]
    done = cli(*args(releases, tmp_path / "av", down[0], down[1]))
    assert done.returncode == 1
    assert all(d in done.stderr for d in down) and "Check that the sources are up" in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_command_lines_are_exit_2_with_one_line(releases, tmp_path):
    secret = "s3cret-in-url"
    cases = [args(releases, tmp_path / "a", "ftp://mirror/"),
             args(releases, tmp_path / "a", f"http://user:{secret}@mirror:2221"),
             args(releases, tmp_path / "a", "http://mirror", extra=("--user", USER, "--password-file",
                                                                     str(tmp_path / "missing"))),
             args(releases, tmp_path / "a", r"\\mirror\share"),
             args(releases, tmp_path / "a", "http://mirror", extra=("--language", "english"))]
    for case in cases:
        done = cli(*case)
        assert done.returncode == 2, (case, done.stderr)
        assert done.stderr.startswith("updmirror: error: ") and len(done.stderr.strip().splitlines()) == 1
        assert secret not in done.stderr


def test_a_folder_another_update_holds_is_exit_3(releases, tmp_path):
    dest = tmp_path / "av"
    with RunningUpdate(releases, dest, tmp_path) as first:
        done = cli(*args(releases, dest, "http://127.0.0.1:9"))
    assert done.returncode == 3 and f"another update (pid {first.proc.pid})" in done.stderr


def test_the_help_documents_the_sources_syntax_and_the_exit_codes():
    done = cli("client", "update", "--help")
    assert done.returncode == 0
    for text in ("exit codes:", "0 ", "1 ", "2 ", "3 ", "equal priority", r"\\server\share"):
        assert text in done.stdout


def test_a_folder_that_cannot_be_written_is_exit_3(releases, tmp_path):
    dest = tmp_path / "av"
    dest.mkdir()
    (dest / "versions").write_text("not a folder")     # so that installing cannot create it
    with releases.serve(releases.second) as vendor:
        done = cli(*args(releases, dest, vendor.url, extra=("--user", USER, "--password-file", "-")),
                   stdin=PASSWORD)
    assert done.returncode == 3, done.stderr
    assert "cannot write" in done.stderr and "Traceback" not in done.stderr
