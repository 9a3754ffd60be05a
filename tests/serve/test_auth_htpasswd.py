import os
import shutil
import stat
import statistics
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import bcrypt
import pytest

from tools import needs_tool
from updmirror.errors import ConfigError, UpdmirrorError
from updmirror.serve import auth
from updmirror.serve.auth import GuessLimit, Htpasswd, apr1, set_password
from updmirror.serve.counters import Buckets

HTPASSWD = shutil.which("htpasswd")
needs_htpasswd = needs_tool("htpasswd", "apt-get install apache2-utils")

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


def limit(clock) -> GuessLimit:
    return GuessLimit(Buckets(slots=1024, clock=clock))


def test_guesses_pass_in_a_burst_then_one_per_refill_and_the_wait_is_exact():
    clock = Clock()
    guesses = limit(clock)
    assert [guesses.admit("10.0.0.5", "alice") for _ in range(auth.USER_BURST)] == [0.0] * auth.USER_BURST
    wait = guesses.admit("10.0.0.5", "alice")
    assert wait == pytest.approx(auth.USER_REFILL)
    clock.now += wait - 0.01
    assert guesses.admit("10.0.0.5", "alice") > 0           # refused guesses do not count
    clock.now += 0.01
    assert guesses.admit("10.0.0.5", "alice") == 0.0
    assert guesses.admit("10.0.0.5", "alice") == pytest.approx(auth.USER_REFILL)
    assert guesses.admit("10.0.0.6", "alice") == 0.0        # another address has its own


def test_a_right_password_gives_its_tokens_back_and_resets_nothing():
    guesses = limit(Clock())
    for _ in range(auth.USER_BURST - 1):
        assert guesses.admit("10.0.0.5", "alice") == 0.0
    for _ in range(5):                                       # right each time
        assert guesses.admit("10.0.0.5", "alice") == 0.0
        guesses.refund("10.0.0.5", "alice")
    assert guesses.admit("10.0.0.5", "alice") == 0.0         # the last of the burst
    assert guesses.admit("10.0.0.5", "alice") > 0


def test_the_address_limit_holds_whatever_the_user_names():
    guesses = limit(Clock())
    got = [guesses.admit("10.0.0.5", f"user{i}") for i in range(auth.ADDRESS_BURST + 1)]
    assert got[:-1] == [0.0] * auth.ADDRESS_BURST and got[-1] == pytest.approx(auth.ADDRESS_REFILL)


def test_ipv6_addresses_count_per_64_and_mapped_ipv4_as_ipv4():
    guesses = limit(Clock())
    for i in range(auth.USER_BURST):
        assert guesses.admit(f"fd00:1:2:3::{i + 1:x}", "alice") == 0.0
    assert guesses.admit("fd00:1:2:3::ffff", "alice") > 0
    assert guesses.admit("fd00:1:2:4::1", "alice") == 0.0
    for _ in range(auth.USER_BURST):
        guesses.admit("::ffff:10.1.1.1", "alice")
    assert guesses.admit("10.1.1.1", "alice") > 0


def test_the_shared_table_stays_its_size_and_keeps_the_throttled():
    clock = Clock()
    guesses = limit(clock)
    for _ in range(auth.USER_BURST):
        guesses.admit("10.9.9.9", "alice")
    for i in range(20_000):                    # far more addresses than slots
        guesses.admit(f"10.0.{i // 256}.{i % 256}", "x")
        clock.now += 0.001
    assert guesses.admit("10.9.9.9", "alice") > 0


def test_buckets_are_shared_with_forked_workers():
    buckets = Buckets(slots=64)
    wants = [(b"k", 3, 60.0)]
    pid = os.fork()
    if pid == 0:
        code = 0 if all(buckets.take(wants) == 0.0 for _ in range(3)) else 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert buckets.take(wants) > 0             # the child used them up


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
