import os
import shutil
import stat
import statistics
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import bcrypt
import pytest

from updmirror.errors import ConfigError, UpdmirrorError
from updmirror.serve.auth import FailedAttempts, Htpasswd, apr1, set_password

HTPASSWD = shutil.which("htpasswd")
needs_htpasswd = pytest.mark.skipif(HTPASSWD is None, reason="Apache's htpasswd is not installed "
                                    "(apt-get install apache2-utils)")

# Lines written by Apache's htpasswd 2.4 (-B, -m, -s) for the password "secret".
APACHE_BCRYPT = "alice:$2y$05$4cUtXm2pjgdz0Jhk4DbFY.wbrzSlSVKBOroAwtLyteKYiy4l.5ZKW"
APACHE_APR1 = "bob:$apr1$88Z5A3iP$Ag.I5GX1qegFRtVRV9Faz/"
APACHE_SHA = "carol:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ="


def write(tmp_path, *lines):
    path = tmp_path / "htpasswd"
    path.write_text("".join(line + "\n" for line in lines))
    return path


@pytest.mark.parametrize("line", [APACHE_BCRYPT, APACHE_APR1, APACHE_SHA], ids=["bcrypt", "apr1", "sha"])
def test_each_apache_form_accepts_the_right_password_and_refuses_a_wrong_one(tmp_path, line):
    user = line.split(":")[0]
    users = Htpasswd.load(write(tmp_path, line))
    assert users.check(user, "secret")
    assert users.check(user, "secret")  # the remembered success answers the same
    assert not users.check(user, "Secret")
    assert not users.check(user, "")
    assert not users.check(user, "secret ")


def test_bcrypt_2a_and_2b_prefixes_are_accepted(tmp_path):
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(4)).decode()
    assert hashed.startswith("$2b$")
    users = Htpasswd.load(write(tmp_path, "b:" + hashed, "a:" + "$2a$" + hashed[4:]))
    assert users.check("a", "pw") and users.check("b", "pw")
    assert not users.check("a", "pW")


def test_apr1_matches_known_vectors():
    assert apr1(b"secret", b"88Z5A3iP") == APACHE_APR1.split(":")[1]
    # Salt longer than 8 characters is cut, as Apache does.
    assert apr1(b"secret", b"88Z5A3iPxyz") == APACHE_APR1.split(":")[1]


def test_unknown_user_is_refused(tmp_path):
    users = Htpasswd.load(write(tmp_path, APACHE_BCRYPT, APACHE_SHA))
    assert not users.check("mallory", "secret")
    assert not users.check("", "")
    assert users.users == ["alice", "carol"]


def test_unknown_user_costs_about_what_a_known_user_costs(tmp_path):
    hashed = bcrypt.hashpw(b"right", bcrypt.gensalt(10)).decode()
    users = Htpasswd.load(write(tmp_path, "alice:" + hashed))

    def median_time(user):
        samples = []
        for _ in range(3):
            t0 = time.perf_counter()
            assert not users.check(user, "wrong")
            samples.append(time.perf_counter() - t0)
        return statistics.median(samples)

    known, unknown = median_time("alice"), median_time("nobody")
    # Without the dummy check an unknown user would take microseconds
    # against tens of milliseconds: the gap would be a thousandfold.
    assert unknown > known * 0.3, (known, unknown)


def test_comments_blank_lines_and_later_duplicates_are_ignored(tmp_path):
    other = bcrypt.hashpw(b"other", bcrypt.gensalt(4)).decode()
    users = Htpasswd.load(write(tmp_path, "# mirror users", "", APACHE_SHA, "carol:" + other))
    assert users.check("carol", "secret")
    assert not users.check("carol", "other")


@pytest.mark.parametrize("bad, cause", [
    ("no colon here", "not 'user:hash'"),
    (":{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=", "not 'user:hash'"),
    ("eve:secret", "plain-text"),
    ("dave:bZaQFO2hnCiSI", "crypt(3)"),
    ("frank:$5$abc$def", "SHA-crypt"),
    ("gina:$2y$05$tooshort", "damaged"),
])
def test_a_bad_line_is_refused_naming_file_line_and_cause(tmp_path, bad, cause):
    path = write(tmp_path, "# users", APACHE_APR1, bad)
    with pytest.raises(ConfigError) as info:
        Htpasswd.load(path)
    message = str(info.value)
    assert str(path) in message and "line 3" in message and cause in message
    assert "secret" not in message.replace("plain-text", "")  # the password is not echoed
    assert info.value.exit_code == 2


def test_missing_file_is_a_config_error_naming_it(tmp_path):
    with pytest.raises(ConfigError, match="htpasswd file not found") as info:
        Htpasswd.load(tmp_path / "nope")
    assert str(tmp_path / "nope") in str(info.value)


def test_set_password_creates_the_file_with_bcrypt_and_mode_0640(tmp_path):
    path = tmp_path / "htpasswd"
    assert set_password(path, "alice", "pässword") is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    text = path.read_text()
    assert text.startswith("alice:$2b$") and "pässword" not in text
    users = Htpasswd.load(path)
    assert users.check("alice", "pässword") and not users.check("alice", "password")


def test_set_password_changes_one_user_and_keeps_every_other_line(tmp_path):
    path = write(tmp_path, "# mirror users", APACHE_APR1, "alice:{SHA}AAAAAAAAAAAAAAAAAAAAAAAAAAA=", APACHE_SHA)
    assert set_password(path, "alice", "new one") is False
    lines = path.read_text().splitlines()
    assert lines[0] == "# mirror users" and lines[1] == APACHE_APR1 and lines[3] == APACHE_SHA
    assert lines[2].startswith("alice:$2b$")
    users = Htpasswd.load(path)
    assert users.check("alice", "new one") and users.check("bob", "secret") and users.check("carol", "secret")
    assert set_password(path, "dora", "x") is True
    assert Htpasswd.load(path).users == ["bob", "alice", "carol", "dora"]


@pytest.mark.parametrize("user, password", [("a:b", "x"), ("", "x"), ("with space", "x"), ("ok", ""),
                                            ("ok", "x" * 73)])
def test_set_password_refuses_unusable_names_and_passwords(tmp_path, user, password):
    with pytest.raises(UpdmirrorError):
        set_password(tmp_path / "htpasswd", user, password)
    assert not (tmp_path / "htpasswd").exists()


def test_set_password_into_a_missing_folder_says_so(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        set_password(tmp_path / "nowhere" / "htpasswd", "alice", "x")


@needs_htpasswd
@pytest.mark.parametrize("flag", ["-B", "-m", "-s"])
def test_files_written_by_apache_htpasswd_are_understood(tmp_path, flag):
    path = tmp_path / "htpasswd"
    for user, password in [("alice", "correct horse"), ("bob", "ünïcode pw"), ("carol", "x" * 40)]:
        create = ["-c"] if not path.exists() else []
        subprocess.run([HTPASSWD, "-b", *create, flag, str(path), user, password], check=True,
                       capture_output=True, timeout=30)
    users = Htpasswd.load(path)
    assert users.check("alice", "correct horse")
    assert users.check("bob", "ünïcode pw")
    assert users.check("carol", "x" * 40)
    assert not users.check("alice", "correct horse!")
    assert not users.check("bob", "unicode pw")


@needs_htpasswd
def test_apache_htpasswd_accepts_what_set_password_writes(tmp_path):
    path = tmp_path / "htpasswd"
    set_password(path, "alice", "s3cret!")
    ok = subprocess.run([HTPASSWD, "-vb", str(path), "alice", "s3cret!"], capture_output=True, timeout=30)
    bad = subprocess.run([HTPASSWD, "-vb", str(path), "alice", "s3cret?"], capture_output=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    assert bad.returncode != 0


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_failed_attempts_block_after_the_limit_and_unblock_after_the_window():
    clock = Clock()
    attempts = FailedAttempts(limit=3, window=60.0, clock=clock)
    for _ in range(2):
        attempts.record("10.0.0.5")
        clock.now += 1
    assert not attempts.blocked("10.0.0.5")
    attempts.record("10.0.0.5")
    assert attempts.blocked("10.0.0.5")
    assert not attempts.blocked("10.0.0.6")
    clock.now += 57.5          # 59.5 s after the first failure
    assert attempts.blocked("10.0.0.5")
    clock.now += 1             # the first failure has left the window
    assert not attempts.blocked("10.0.0.5")


def test_a_success_resets_the_count():
    attempts = FailedAttempts(limit=2, window=60.0, clock=Clock())
    attempts.record("10.0.0.5")
    attempts.reset("10.0.0.5")
    attempts.record("10.0.0.5")
    assert not attempts.blocked("10.0.0.5")


def test_ipv6_addresses_count_per_64_and_mapped_ipv4_as_ipv4():
    attempts = FailedAttempts(limit=2, window=60.0, clock=Clock())
    attempts.record("fd00:1:2:3::1")
    attempts.record("fd00:1:2:3::2")
    assert attempts.blocked("fd00:1:2:3::ffff")
    assert not attempts.blocked("fd00:1:2:4::1")
    attempts.record("::ffff:10.1.1.1")
    attempts.record("10.1.1.1")
    assert attempts.blocked("10.1.1.1")


def test_failed_attempts_track_a_bounded_number_of_addresses():
    attempts = FailedAttempts(limit=1, window=60.0, max_addresses=100, clock=Clock())
    for i in range(1000):
        attempts.record(f"10.0.{i // 256}.{i % 256}")
    assert len(attempts) == 100
    assert attempts.blocked("10.0.3.231")    # among the newest
    assert not attempts.blocked("10.0.0.0")  # the oldest was forgotten


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's group to another needs root")
def test_set_password_gives_a_new_file_its_folders_group_and_keeps_an_old_files_owner(tmp_path):
    folder = tmp_path / "etc"
    folder.mkdir()
    os.chown(folder, -1, 4321)             # as /etc/updmirror is group updmirror
    path = folder / "htpasswd"
    set_password(path, "alice", "x")
    assert path.stat().st_gid == 4321
    os.chown(path, 1234, 5678)
    set_password(path, "bob", "y")
    assert (path.stat().st_uid, path.stat().st_gid) == (1234, 5678)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_checks_from_many_threads_at_once_agree(tmp_path):
    lines = [f"user{i}:" + bcrypt.hashpw(f"pw{i}".encode(), bcrypt.gensalt(4)).decode() for i in range(8)]
    users = Htpasswd.load(write(tmp_path, *lines))
    with ThreadPoolExecutor(max_workers=8) as pool:
        right = list(pool.map(lambda i: users.check(f"user{i % 8}", f"pw{i % 8}"), range(200)))
        wrong = list(pool.map(lambda i: users.check(f"user{i % 8}", f"pw{(i + 1) % 8}"), range(50)))
    assert all(right) and not any(wrong)
