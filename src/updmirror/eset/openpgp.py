"""The few pieces of OpenPGP (RFC 4880) that `.nup` files need.

Reader: old- and new-format packet headers (new-format partial body lengths
included: gpg writes literal data that way), v4 RSA/DSA public keys with
their fingerprints, v3 and v4 signatures, and verification of signatures on
a binary document whose hash the caller streams. Nothing here writes: the
writers are the simulated vendor's (`updmirror.vendor.pgpwriter`).

We do not use an OpenPGP library: PGPy is unmaintained and handles neither
the vendor's tag-15 packet nor v3 signatures well, and GnuPG refuses the
vendor's files outright. The cryptography itself is done by `cryptography`;
this module only frames bytes.

Parsing errors raise :class:`PGPError` (or :class:`Truncated`), which callers
turn into a :class:`~updmirror.errors.FormatError` naming their file; only
:func:`load_key_file` raises FormatError itself.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, padding, rsa, utils

from updmirror.errors import FormatError

# Tags and algorithm numbers from RFC 4880 sections 4.3, 9.1 and 9.4.
TAG_SIGNATURE = 2
TAG_ONE_PASS = 4
TAG_PUBLIC_KEY = 6
TAG_COMPRESSED = 8
TAG_LITERAL = 11
TAG_USER_ID = 13
TAG_PUBLIC_SUBKEY = 14
TAG_ESET_KEY = 15  # unassigned by RFC 4880; the vendor puts its key there

ALGO_RSA = 1
ALGO_RSA_SIGN = 3
ALGO_DSA = 17
ALGO_NAMES = {ALGO_RSA: "RSA", ALGO_RSA_SIGN: "RSA", ALGO_DSA: "DSA"}

HASH_SHA1 = 2
HASH_SHA256 = 8
HASH_SHA512 = 10
#: OpenPGP hash id -> (name, hashlib constructor, `cryptography` algorithm).
HASHES = {
    HASH_SHA1: ("SHA1", hashlib.sha1, hashes.SHA1),
    HASH_SHA256: ("SHA256", hashlib.sha256, hashes.SHA256),
    9: ("SHA384", hashlib.sha384, hashes.SHA384),
    HASH_SHA512: ("SHA512", hashlib.sha512, hashes.SHA512),
    11: ("SHA224", hashlib.sha224, hashes.SHA224),
}

SIG_BINARY = 0x00
SIG_POSITIVE_CERT = 0x13

# Keys and signatures are small; a bigger packet is an attack or garbage.
MAX_SMALL_PACKET = 1024 * 1024
# An RSA modulus this large would make verification of a forged file slow.
MAX_RSA_BITS = 16384


class PGPError(Exception):
    """The bytes are not the OpenPGP data we expect."""


class Truncated(PGPError):
    """The data ends inside a packet."""


class Unsupported(PGPError):
    """Well-formed, but a version or algorithm we do not handle."""


def hash_name(algo: int) -> str:
    return HASHES[algo][0] if algo in HASHES else f"hash {algo}"


def algo_name(algo: int) -> str:
    return ALGO_NAMES.get(algo, f"algorithm {algo}")


# --------------------------------------------------------------------------
# Reading packets from a stream


class Source:
    """A binary file read forward only, with end-of-file detection."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self._pushback = b""
        self.offset = 0

    def read(self, n: int) -> bytes:
        """Up to `n` bytes; fewer only at end of file."""
        parts = []
        if self._pushback:
            parts.append(self._pushback[:n])
            self._pushback = self._pushback[n:]
            n -= len(parts[0])
        # Loop because raw files and pipes may return short reads.
        while n > 0:
            b = self._f.read(n)
            if not b:
                break
            parts.append(b)
            n -= len(b)
        out = parts[0] if len(parts) == 1 else b"".join(parts)
        self.offset += len(out)
        return out

    def read_exact(self, n: int) -> bytes:
        b = self.read(n)
        if len(b) != n:
            raise Truncated(f"data ends at byte {self.offset}, inside a packet")
        return b

    def at_eof(self) -> bool:
        b = self.read(1)
        if b:
            self._pushback = b + self._pushback
            self.offset -= 1
        return not b


def _new_length(src: Source) -> tuple[int, bool]:
    """A new-format body length: (length, is_partial)."""
    o = src.read_exact(1)[0]
    if o < 192:
        return o, False
    if o < 224:
        return ((o - 192) << 8) + src.read_exact(1)[0] + 192, False
    if o == 255:
        return struct.unpack(">I", src.read_exact(4))[0], False
    return 1 << (o & 0x1F), True


class PacketBody:
    """One packet's body, read in pieces, following partial-length chunks."""

    def __init__(self, src: Source, length: int | None, partial: bool) -> None:
        self._src = src
        self._left = length  # None: old-format indeterminate length, up to EOF
        self._partial = partial

    def read(self, n: int) -> bytes:
        """Up to `n` bytes; fewer only at the end of the body."""
        parts = []
        while n > 0:
            if self._left == 0:
                if not self._partial:
                    break
                self._left, self._partial = _new_length(self._src)
                continue
            if self._left is None:
                b = self._src.read(n)
                if not b:
                    break
            else:
                b = self._src.read_exact(min(n, self._left))
                self._left -= len(b)
            parts.append(b)
            n -= len(b)
        return b"".join(parts)

    def read_exact(self, n: int) -> bytes:
        b = self.read(n)
        if len(b) != n:
            raise PGPError("packet body shorter than its own fields say")
        return b

    def read_all(self, limit: int = MAX_SMALL_PACKET) -> bytes:
        b = self.read(limit + 1)
        if len(b) > limit:
            raise PGPError(f"packet larger than {limit} bytes")
        return b

    def chunks(self, size: int) -> Iterator[bytes]:
        while b := self.read(size):
            yield b


@dataclass
class Packet:
    tag: int
    offset: int  # of the header, for messages
    body: PacketBody


def read_packet(src: Source) -> Packet | None:
    """The next packet header, or None at a clean end of file."""
    offset = src.offset
    first = src.read(1)
    if not first:
        return None
    h = first[0]
    if not h & 0x80:
        raise PGPError(f"byte {offset} is not a packet header (0x{h:02x})")
    if h & 0x40:  # new format
        length, partial = _new_length(src)
        return Packet(h & 0x3F, offset, PacketBody(src, length, partial))
    ltype = h & 3
    length = None if ltype == 3 else int.from_bytes(src.read_exact((1, 2, 4)[ltype]), "big")
    return Packet((h >> 2) & 0x0F, offset, PacketBody(src, length, False))


def iter_packets(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(tag, body) of each packet in an in-memory block."""
    src = Source(io.BytesIO(data))
    while (p := read_packet(src)) is not None:
        yield p.tag, p.body.read_all()


class _Cursor:
    """Fields of an in-memory packet body, with bounds checks."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise PGPError("packet body shorter than its own fields say")
        b = self.data[self.pos : self.pos + n]
        self.pos += n
        return b

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "big")

    def mpi(self) -> int:
        return int.from_bytes(self.take((self.u16() + 7) // 8), "big")


# --------------------------------------------------------------------------
# Public keys


@dataclass(frozen=True)
class PublicKey:
    """A v4 public key packet, parsed."""

    algo: int
    created: int
    key: rsa.RSAPublicKey | dsa.DSAPublicKey
    body: bytes  # the packet body, as hashed for fingerprints and certifications
    fingerprint: str  # 40 upper-case hex digits

    @property
    def key_id(self) -> str:
        return self.fingerprint[-16:]


def fingerprint(key_body: bytes) -> str:
    return hashlib.sha1(key_hash_prefix(key_body) + key_body).hexdigest().upper()


def key_hash_prefix(key_body: bytes) -> bytes:
    return b"\x99" + len(key_body).to_bytes(2, "big")


def parse_public_key(body: bytes) -> PublicKey:
    c = _Cursor(body)
    version = c.u8()
    if version != 4:
        raise Unsupported(f"version {version} public key")
    created, algo = c.u32(), c.u8()
    try:
        if algo in (ALGO_RSA, ALGO_RSA_SIGN):
            n, e = c.mpi(), c.mpi()
            if n.bit_length() > MAX_RSA_BITS:
                raise Unsupported(f"{n.bit_length()}-bit RSA key")
            key = rsa.RSAPublicNumbers(e, n).public_key()
        elif algo == ALGO_DSA:
            p, q, g, y = c.mpi(), c.mpi(), c.mpi(), c.mpi()
            key = dsa.DSAPublicNumbers(y, dsa.DSAParameterNumbers(p, q, g)).public_key()
        else:
            raise Unsupported(f"public key {algo_name(algo)}")
    except (ValueError, UnsupportedAlgorithm) as e:
        raise Unsupported(f"{algo_name(algo)} key the crypto library refuses ({e})") from None
    return PublicKey(algo, created, key, body, fingerprint(body))


def parse_key_block(data: bytes) -> list[PublicKey]:
    """The usable primary keys and subkeys of a binary or armored key block.

    Keys of other algorithms are skipped, not refused: a key file may hold
    keys we have no use for. Self-signatures are not checked; a key is
    trusted by pinning its fingerprint, which covers the key material.
    """
    if data.lstrip().startswith(b"-----BEGIN PGP"):
        data = dearmor(data)
    keys = []
    for tag, body in iter_packets(data):
        if tag in (TAG_PUBLIC_KEY, TAG_PUBLIC_SUBKEY):
            try:
                keys.append(parse_public_key(body))
            except Unsupported:
                continue
    return keys


def load_key_file(path: str | os.PathLike, source: str | None = None) -> list[PublicKey]:
    """Keys of a key file (binary or armored), FormatError naming the file."""
    source = source or os.fspath(path)
    with open(path, "rb") as f:
        data = f.read(MAX_SMALL_PACKET * 4)
    try:
        keys = parse_key_block(data)
    except PGPError as e:
        raise FormatError(f"{source}: not an OpenPGP public key file: {e}") from None
    if not keys:
        raise FormatError(f"{source}: no RSA or DSA v4 public key in this file")
    return keys


# --------------------------------------------------------------------------
# ASCII armor (RFC 4880 section 6), read


def crc24(data: bytes) -> int:
    crc = 0xB704CE
    for byte in data:
        crc ^= byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


_ARMOR_RE = re.compile(rb"-----BEGIN PGP ([A-Z ]+)-----\r?\n(.*?)-----END PGP \1-----", re.S)


def dearmor(text: bytes) -> bytes:
    m = _ARMOR_RE.search(text)
    if not m:
        raise PGPError("armor header without a matching footer")
    lines = m.group(2).decode("ascii", "replace").splitlines()
    # Armor headers ("Comment: ...") run up to the first blank line.
    if "" in (s.strip() for s in lines):
        lines = lines[[s.strip() for s in lines].index("") + 1 :]
    crc = None
    if lines and lines[-1].startswith("="):
        crc = lines.pop()[1:].strip()
    try:
        data = base64.b64decode("".join(s.strip() for s in lines), validate=True)
        if crc is not None and base64.b64decode(crc, validate=True) != crc24(data).to_bytes(3, "big"):
            raise PGPError("armor checksum does not match")
    except (binascii.Error, ValueError) as e:
        raise PGPError(f"bad armor: {e}") from None
    return data


# --------------------------------------------------------------------------
# Signatures


@dataclass(frozen=True)
class OnePass:
    sig_type: int
    hash_algo: int
    pubkey_algo: int
    key_id: str


def parse_one_pass(body: bytes) -> OnePass:
    c = _Cursor(body)
    if (version := c.u8()) != 3:
        raise Unsupported(f"version {version} one-pass signature packet")
    sig_type, hash_algo, pubkey_algo = c.u8(), c.u8(), c.u8()
    key_id = c.take(8).hex().upper()
    c.u8()  # nested flag: we verify every signature independently anyway
    return OnePass(sig_type, hash_algo, pubkey_algo, key_id)


@dataclass(frozen=True)
class Signature:
    version: int
    sig_type: int
    pubkey_algo: int
    hash_algo: int
    created: int | None
    key_id: str | None  # 16 upper-case hex digits
    issuer_fingerprint: str | None
    trailer: bytes  # what is hashed after the document
    left16: bytes
    mpis: tuple[int, ...]


def _subpackets(data: bytes) -> Iterator[tuple[int, bytes]]:
    c = _Cursor(data)
    while c.pos < len(data):
        o = c.u8()
        if o < 192:
            n = o
        elif o < 255:
            n = ((o - 192) << 8) + c.u8() + 192
        else:
            n = c.u32()
        if n == 0:
            raise PGPError("empty signature subpacket")
        sub = c.take(n)
        yield sub[0] & 0x7F, sub[1:]


def parse_signature(body: bytes) -> Signature:
    c = _Cursor(body)
    version = c.u8()
    if version == 3:
        if c.u8() != 5:
            raise PGPError("v3 signature with a hashed length other than 5")
        sig_type, created = c.u8(), c.u32()
        key_id = c.take(8).hex().upper()
        pubkey_algo, hash_algo = c.u8(), c.u8()
        trailer, fpr = bytes([sig_type]) + created.to_bytes(4, "big"), None
    elif version == 4:
        sig_type, pubkey_algo, hash_algo = c.u8(), c.u8(), c.u8()
        hashed = c.take(c.u16())
        unhashed = c.take(c.u16())
        trailer = body[: c.pos - 2 - len(unhashed)]
        trailer += b"\x04\xff" + len(trailer).to_bytes(4, "big")
        created = key_id = fpr = None
        # Only the hashed area is signed: creation time must come from there.
        # The issuer may come from either: a lying issuer only picks a key
        # whose verification then fails.
        for area, is_hashed in ((hashed, True), (unhashed, False)):
            for kind, data in _subpackets(area):
                if kind == 2 and is_hashed and len(data) == 4:
                    created = int.from_bytes(data, "big")
                elif kind == 16 and len(data) == 8:
                    key_id = key_id or data.hex().upper()
                elif kind == 33 and len(data) == 21 and data[0] == 4:
                    fpr = fpr or data[1:].hex().upper()
        if key_id is None and fpr is not None:
            key_id = fpr[-16:]
    else:
        raise Unsupported(f"version {version} signature")
    left16 = c.take(2)
    count = {ALGO_RSA: 1, ALGO_RSA_SIGN: 1, ALGO_DSA: 2}.get(pubkey_algo, 0)
    mpis = tuple(c.mpi() for _ in range(count))
    return Signature(version, sig_type, pubkey_algo, hash_algo, created, key_id, fpr, trailer, left16, mpis)


def new_hash(algo: int):
    """A hashlib object for an OpenPGP hash id (KeyError if unknown)."""
    return HASHES[algo][1]()


def check_signature(sig: Signature, key: PublicKey, document_hash) -> str | None:
    """None if `sig` by `key` is good, else why not.

    `document_hash` is a hashlib object that has seen the signed document; it
    is copied, not changed, so one can serve several signatures.
    """
    if sig.hash_algo not in HASHES:
        return f"unsupported {hash_name(sig.hash_algo)}"
    if ALGO_NAMES.get(sig.pubkey_algo) != ALGO_NAMES.get(key.algo):
        return f"{algo_name(sig.pubkey_algo)} signature but {algo_name(key.algo)} key"
    h = document_hash.copy()
    h.update(sig.trailer)
    digest = h.digest()
    if digest[:2] != sig.left16:
        return "digest does not match (the signed data was changed)"
    prehashed = utils.Prehashed(HASHES[sig.hash_algo][2]())
    try:
        if isinstance(key.key, rsa.RSAPublicKey):
            (s,) = sig.mpis
            size = (key.key.key_size + 7) // 8
            if s >= key.key.public_numbers().n:
                return "signature value out of range"
            key.key.verify(s.to_bytes(size, "big"), digest, padding.PKCS1v15(), prehashed)
        else:
            r, s = sig.mpis
            key.key.verify(utils.encode_dss_signature(r, s), digest, prehashed)
    except InvalidSignature:
        return "bad signature"
    except (ValueError, UnsupportedAlgorithm) as e:
        return f"cannot verify: {e}"
    return None
