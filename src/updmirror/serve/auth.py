"""HTTP Basic authentication against an Apache-compatible htpasswd file,
and a limit on password guesses per address, shared by the workers.

Accepted entry forms are those Apache's `htpasswd` writes and that are not
trivially broken: bcrypt (`-B`, `$2y$`/`$2a$`/`$2b$`), the older apr1 MD5
(`-m`, `$apr1$`) and unsalted SHA-1 (`-s`, `{SHA}`). Plain text (`-p`) and
DES crypt(3) (`-d`, which silently cuts passwords to 8 characters) are
refused when the file is loaded, so that a weak file is noticed at start
rather than at the first failed login.

Checking is meant to reveal nothing through its timing: an unknown user
costs a dummy check of the same kind and cost as the file's own entries,
and digests are compared with `hmac.compare_digest`. Because bcrypt is
deliberately slow and clients send their credentials with every request,
successful checks are remembered (keyed by an HMAC with a per-process
secret, never the password itself) so that only the first request of a
client pays for bcrypt. This memory is the server's only one: it lives
and dies with the loaded file, so a reload (SIGHUP) forgets it and a
removed user loses access at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass
from pathlib import Path

import bcrypt

from updmirror.errors import ConfigError, UpdmirrorError
from updmirror.files import atomic_file

from .allow import client_key
from .counters import Buckets

#: bcrypt cost for passwords we write. Apache's default (5) is weak; each
#: step doubles the CPU a failed login costs the server, and 10 keeps that
#: near 0.1 s on a small machine while still being OWASP's minimum.
BCRYPT_ROUNDS = 10
#: bcrypt reads only this many bytes of a password (the library refuses more).
BCRYPT_MAX_BYTES = 72
#: How many successful (user, password) checks are remembered per file load.
VERIFIED_CACHE_SIZE = 4096
#: Guesses of one user's password from one address: this many at once, then
#: one more every USER_REFILL seconds.
USER_BURST, USER_REFILL = 10, 30.0
#: Guesses from one address whatever the user names (a spray over many).
ADDRESS_BURST, ADDRESS_REFILL = 30, 30.0

_BCRYPT_RE = re.compile(r"\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}")
_APR1_RE = re.compile(r"\$apr1\$([^$]{0,8})\$([./0-9A-Za-z]{22})")
_SHA_RE = re.compile(r"\{SHA\}([A-Za-z0-9+/]{27}=)")
_CRYPT_RE = re.compile(r"[./0-9A-Za-z]{13}")
_USER_RE = re.compile(r"[^:\s\x00-\x1f\x7f]{1,255}")
_ITOA64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class _Entry:
    kind: str     # "bcrypt", "apr1" or "sha"
    hash: str
    cost: int = 0  # bcrypt's log2 rounds; 0 for the others


class Htpasswd:
    """The users of one htpasswd file, as loaded at one moment.

    A reload (SIGHUP) is a new `Htpasswd.load(...)`; the running server swaps
    the object, so a failed reload can keep the previous one.
    """

    def __init__(self, entries: dict[str, _Entry], source: str = "<htpasswd>"):
        self._entries = dict(entries)
        self.source = source
        self._secret = secrets.token_bytes(32)
        self._verified: OrderedDict[bytes, str] = OrderedDict()
        # The server checks passwords in a thread pool, so the memory is shared.
        self._lock = threading.Lock()
        self._dummy = _dummy_entry(self._entries.values())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Htpasswd:
        """Read `path`; raises ConfigError (exit 2) naming the file, the line
        and the cause when it is missing, unreadable or holds a bad entry."""
        path = Path(path)
        try:
            text = path.read_text("utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{path}: htpasswd file not found; create it with "
                              "'updmirror passwd -c mirror.toml USER'") from None
        except PermissionError:
            raise ConfigError(f"{path}: htpasswd file not readable by this user (uid {os.getuid()}); "
                              "check its owner and mode (0640, group of the server's user)") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read htpasswd file ({exc.strerror})") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: htpasswd file is not UTF-8 text") from None
        return cls(parse(text, str(path)), str(path))

    @property
    def users(self) -> list[str]:
        return list(self._entries)

    def remembers(self, user: str, password: str) -> bool:
        """True when this (user, password) was checked right since the file
        was loaded: cheap (one HMAC), so it may run on the event loop."""
        entry = self._entries.get(user)
        return entry is not None and self._remembered(self._memory_key(user, password), entry)

    def _memory_key(self, user: str, password: str) -> bytes:
        return hmac.new(self._secret, user.encode("utf-8", "surrogateescape") + b"\0"
                        + password.encode("utf-8", "surrogateescape"), hashlib.sha256).digest()

    def _remembered(self, key: bytes, entry: _Entry) -> bool:
        # Keyed on the hash too: a user whose line changed is checked anew.
        with self._lock:
            return self._verified.get(key) == entry.hash

    def _remember(self, key: bytes, entry: _Entry) -> None:
        with self._lock:
            self._verified[key] = entry.hash
            while len(self._verified) > VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)

    def check(self, user: str, password: str) -> bool:
        """True when `password` is `user`'s; the time taken does not tell
        whether `user` exists. CPU-bound (bcrypt): call it off the event loop."""
        secret = password.encode("utf-8", "surrogateescape")
        entry = self._entries.get(user)
        if entry is None:
            _verify(self._dummy, secret)
            return False
        key = self._memory_key(user, password)
        if self._remembered(key, entry):
            return True
        if not _verify(entry, secret):
            return False
        self._remember(key, entry)
        return True


def parse(text: str, source: str) -> dict[str, _Entry]:
    """The entries of an htpasswd file's text; `source` names it in errors.

    Like Apache, blank lines and `#` comments are skipped, anything after a
    second colon is ignored, and the first line of a user wins.
    """
    entries: dict[str, _Entry] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, rest = line.partition(":")
        where = f"{source}: line {number}"
        if not sep or not user:
            raise ConfigError(f"{where}: not 'user:hash'; fix or remove the line, or re-create "
                              "the user with 'updmirror passwd'")
        hashed = rest.split(":", 1)[0]
        entry = _classify(hashed)
        if isinstance(entry, str):
            raise ConfigError(f"{where}: user {user!r}: {entry}; set a new password with "
                              f"'updmirror passwd -c mirror.toml {user}' (or 'htpasswd -B')")
        entries.setdefault(user, entry)
    return entries


def _classify(hashed: str) -> _Entry | str:
    """The entry for a stored hash, or why it is refused."""
    m = _BCRYPT_RE.fullmatch(hashed)
    if m and 4 <= int(m.group(1)) <= 31:
        return _Entry("bcrypt", hashed, int(m.group(1)))
    if _APR1_RE.fullmatch(hashed):
        return _Entry("apr1", hashed)
    if _SHA_RE.fullmatch(hashed):
        return _Entry("sha", hashed)
    if hashed.startswith(("$2a$", "$2b$", "$2y$", "$apr1$", "{SHA}")):
        return "damaged hash (wrong length or characters)"
    if hashed.startswith(("$5$", "$6$")):
        return "SHA-crypt ($5$/$6$) hashes are not supported (bcrypt, apr1 and {SHA} are)"
    if hashed.startswith("$"):
        return "unknown hash form (bcrypt, apr1 and {SHA} are supported)"
    if _CRYPT_RE.fullmatch(hashed):
        return "crypt(3) DES hashes are refused: they only use the first 8 characters of a password"
    return "looks like a plain-text password, which is refused"


def _verify(entry: _Entry, secret: bytes) -> bool:
    if entry.kind == "bcrypt":
        # bcrypt only ever used the first 72 bytes; Apache's htpasswd cut longer
        # passwords silently, and this library refuses them, so cut them too.
        stored = entry.hash.encode("ascii")
        if stored.startswith(b"$2y$"):
            stored = b"$2b$" + stored[4:]   # same algorithm, another name
        try:
            return bcrypt.checkpw(secret[:BCRYPT_MAX_BYTES], stored)
        except ValueError:
            return False
    if entry.kind == "apr1":
        salt = entry.hash.split("$")[2]
        return hmac.compare_digest(apr1(secret, salt.encode("ascii")).encode("ascii"),
                                   entry.hash.encode("ascii"))
    computed = "{SHA}" + base64.b64encode(hashlib.sha1(secret).digest()).decode("ascii")
    return hmac.compare_digest(computed.encode("ascii"), entry.hash.encode("ascii"))


def _dummy_entry(entries) -> _Entry:
    """A check target for unknown users shaped like the file's usual entry,
    so an unknown user costs what a known one does."""
    shapes = Counter((e.kind, e.cost) for e in entries)
    kind, cost = shapes.most_common(1)[0][0] if shapes else ("bcrypt", BCRYPT_ROUNDS)
    throwaway = secrets.token_bytes(16)
    if kind == "bcrypt":
        return _Entry("bcrypt", bcrypt.hashpw(throwaway, bcrypt.gensalt(cost)).decode("ascii"), cost)
    if kind == "apr1":
        return _Entry("apr1", apr1(throwaway, _salt(8).encode("ascii")))
    return _Entry("sha", "{SHA}" + base64.b64encode(hashlib.sha1(throwaway).digest()).decode("ascii"))


def apr1(password: bytes, salt: bytes) -> str:
    """Apache's `$apr1$` MD5 crypt (Poul-Henning Kamp's md5crypt with
    another magic string), as `htpasswd -m` writes it."""
    magic = b"$apr1$"
    salt = salt.split(b"$", 1)[0][:8]
    alternate = hashlib.md5(password + salt + password).digest()
    ctx = hashlib.md5(password + magic + salt)
    for i in range(len(password), 0, -16):
        ctx.update(alternate[:min(16, i)])
    i = len(password)
    while i:
        ctx.update(b"\0" if i & 1 else password[:1])
        i >>= 1
    final = ctx.digest()
    # A thousand rounds to slow down guessing (it was 1995).
    for i in range(1000):
        round_ = hashlib.md5()
        round_.update(password if i & 1 else final)
        if i % 3:
            round_.update(salt)
        if i % 7:
            round_.update(password)
        round_.update(final if i & 1 else password)
        final = round_.digest()
    encoded = ""
    for a, b, c in ((0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)):
        encoded += _to64((final[a] << 16) | (final[b] << 8) | final[c], 4)
    encoded += _to64(final[11], 2)
    return f"$apr1${salt.decode('ascii')}${encoded}"


def _to64(value: int, count: int) -> str:
    out = ""
    for _ in range(count):
        out += _ITOA64[value & 0x3F]
        value >>= 6
    return out


def _salt(length: int) -> str:
    return "".join(secrets.choice(_ITOA64) for _ in range(length))


def set_password(path: str | os.PathLike[str], user: str, password: str) -> bool:
    """Add `user` or change their password (bcrypt) in the htpasswd file at
    `path`, keeping every other line. Returns True when the user was new.

    The file is replaced atomically (a running server reading it sees the old
    or the new file, never half of one), with mode 0640 and, when it existed,
    its owner and group (else its folder's group), so the server's group can
    read it.
    """
    path = Path(path)
    if not _USER_RE.fullmatch(user):
        raise UpdmirrorError(f"{user!r} is not a usable user name: it must be 1-255 characters "
                             "without ':', spaces or control characters")
    secret = password.encode("utf-8")
    if not secret:
        raise UpdmirrorError("the password is empty; choose a non-empty password")
    if len(secret) > BCRYPT_MAX_BYTES:
        raise UpdmirrorError(f"the password is {len(secret)} bytes long; bcrypt uses at most "
                             f"{BCRYPT_MAX_BYTES}, so choose a shorter one")
    line = f"{user}:{bcrypt.hashpw(secret, bcrypt.gensalt(BCRYPT_ROUNDS)).decode('ascii')}\n"

    try:
        old_lines = path.read_text("utf-8").splitlines(keepends=True)
        owner = path.stat()
    except FileNotFoundError:
        old_lines, owner = [], None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read htpasswd file ({getattr(exc, 'strerror', exc)})") from None

    new_lines, added = [], True
    for old in old_lines:
        if old.strip().partition(":")[0] == user and not old.lstrip().startswith("#"):
            if added:
                new_lines.append(line)
                added = False
            continue  # later duplicates of the user would be dead lines
        new_lines.append(old if old.endswith("\n") else old + "\n")
    if added:
        new_lines.append(line)

    _write_atomically(path, "".join(new_lines), owner)
    return added


def _write_atomically(path: Path, text: str, owner: os.stat_result | None) -> None:
    try:
        with atomic_file(path, mode=0o640) as f:
            try:
                if owner is not None:
                    os.fchown(f.fileno(), owner.st_uid, owner.st_gid)
                else:
                    # A new file takes its folder's group (/etc/updmirror is
                    # group updmirror), so the server can read it at once.
                    os.fchown(f.fileno(), -1, path.parent.stat().st_gid)
            except PermissionError:
                pass  # not root: the file stays ours, which is who wrote it before
            f.write(text.encode("utf-8"))
    except OSError as exc:
        if not path.parent.is_dir():
            raise ConfigError(f"{path}: folder {path.parent} does not exist; create it first") from None
        raise ConfigError(f"{path}: cannot write in {path.parent} ({exc.strerror})") from None


class GuessLimit:
    """How many passwords an address may try, for every worker at once.

    Each (address, user) pair may make USER_BURST guesses at once, then one
    every USER_REFILL seconds; each address ADDRESS_BURST whatever the user
    names, then one every ADDRESS_REFILL seconds (a spray over many names).
    A guess takes a token from both buckets before its password is checked;
    a right password gives them back, so logging in never uses up anyone's
    allowance and cannot reset an attacker's either. Past the limit the
    answer is 429 with a Retry-After that is exactly when the next guess is
    let through. Passwords already checked right (`Htpasswd.remembers`) are
    never throttled: guessing cannot lock out a client that is logged in, and
    guessing one user's password leaves the other users behind the same
    (NAT) address their own allowance.
    IPv6 addresses count per /64, as one host usually owns a whole /64.
    """

    def __init__(self, buckets: Buckets):
        self._buckets = buckets

    def admit(self, addr: str, user: str) -> float:
        """0.0 when a guess may be checked now (its tokens are taken), else
        the seconds until one may."""
        return self._buckets.take(_guess_keys(addr, user))

    def refund(self, addr: str, user: str) -> None:
        """The guess was right: give its tokens back."""
        self._buckets.give(_guess_keys(addr, user))


def _guess_keys(addr: str, user: str) -> list[tuple[bytes, int, float]]:
    where = client_key(addr).encode()
    return [(b"address\0" + where, ADDRESS_BURST, ADDRESS_REFILL),
            (b"user\0" + where + b"\0" + user.encode("utf-8", "surrogateescape"), USER_BURST, USER_REFILL)]
