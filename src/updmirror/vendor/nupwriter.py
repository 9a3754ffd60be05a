"""Write `.nup` files the way the vendor does, and the keys that sign them.

For the simulated vendor and the tests only: the mirror reads `.nup` files
with :mod:`updmirror.eset.nup` and never writes one.
"""

from __future__ import annotations

import io
import itertools
import re
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, rsa

from updmirror.errors import FormatError
from updmirror.eset import openpgp
from updmirror.eset.nup import CHUNK
from updmirror.eset.openpgp import PublicKey

from . import pgpwriter

_COMPUTED_KEYS = ("filesize", "crc", "filename")



@dataclass
class SigningKey:
    """A private key with its OpenPGP public part (key, user ID, self-signature)."""

    private: rsa.RSAPrivateKey | dsa.DSAPrivateKey
    public: PublicKey
    block: bytes  # binary transferable public key

    @property
    def fingerprint(self) -> str:
        return self.public.fingerprint

    @property
    def key_id(self) -> str:
        return self.public.key_id

    @property
    def hash_algo(self) -> int:
        # What the vendor's files use with each key type.
        return openpgp.HASH_SHA512 if isinstance(self.private, rsa.RSAPrivateKey) else openpgp.HASH_SHA1

    def public_key_block(self) -> bytes:
        return self.block

    def armored_public_key_block(self) -> str:
        return pgpwriter.armor(self.block)

    def to_pem(self) -> bytes:
        """PKCS#8 private key followed by the armored public key block.

        The public block is kept, not rebuilt, because the fingerprint
        covers its creation time.
        """
        pem = self.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return pem + self.armored_public_key_block().encode()

    @classmethod
    def from_pem(cls, data: bytes, source: str = "signing key") -> SigningKey:
        m = re.search(rb"-----BEGIN PRIVATE KEY-----.*?-----END PRIVATE KEY-----", data, re.S)
        if not m:
            raise FormatError(f"{source}: no PEM private key")
        try:
            private = serialization.load_pem_private_key(m.group(0), password=None)
            block = openpgp.dearmor(data)
            public = openpgp.parse_key_block(block)[0]
        except (ValueError, IndexError, openpgp.PGPError) as e:
            raise FormatError(f"{source}: not a signing key file: {e}") from None
        if not isinstance(private, rsa.RSAPrivateKey | dsa.DSAPrivateKey) or (
            private.public_key().public_numbers() != public.key.public_numbers()
        ):
            raise FormatError(f"{source}: private key and public key block do not match")
        return cls(private, public, block)


def generate_signing_key(
    uid: str = "ESET Update Signing Certificate (simulated)",
    *,
    algorithm: str = "rsa",
    created: int | None = None,
) -> SigningKey:
    """RSA-2048 (the vendor's main key) or DSA-1024 (its legacy second key)."""
    if algorithm == "rsa":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif algorithm == "dsa":
        private = dsa.generate_private_key(key_size=1024)
    else:
        raise ValueError(f"algorithm must be 'rsa' or 'dsa', not {algorithm!r}")
    created = int(time.time()) if created is None else created
    public, block = pgpwriter.transferable_public_key(private, created, uid)
    return SigningKey(private, public, block)


def _read_chunks(f: BinaryIO, size: int) -> Iterator[bytes]:
    while size > 0:
        chunk = f.read(min(CHUNK, size))
        if not chunk:
            raise ValueError(f"blob ends {size} bytes before its declared length")
        size -= len(chunk)
        yield chunk


class _Joined(io.RawIOBase):
    """A seekable file over bytes, a stretch of another seekable file, bytes."""

    def __init__(self, head: bytes, f: BinaryIO, size: int, tail: bytes) -> None:
        self._head, self._f, self._size, self._tail = head, f, size, tail
        self._start = f.tell()
        self._pos = 0
        self.length = len(head) + size + len(tail)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.length}[whence]
        self._pos = max(0, min(base + offset, self.length))
        return self._pos

    def read(self, n: int = -1) -> bytes:
        n = self.length - self._pos if n is None or n < 0 else min(n, self.length - self._pos)
        out = bytearray()
        while len(out) < n:
            pos, want = self._pos, n - len(out)
            if pos < len(self._head):
                part = self._head[pos : pos + want]
            elif pos < len(self._head) + self._size:
                inner = pos - len(self._head)
                self._f.seek(self._start + inner)
                part = self._f.read(min(want, self._size - inner))
                if not part:
                    raise ValueError("module payload ends before its declared length")
            else:
                at = pos - len(self._head) - self._size
                part = self._tail[at : at + want]
            out += part
            self._pos += len(part)
        return bytes(out)


def joined(head: bytes, f: BinaryIO, size: int, tail: bytes = b"") -> _Joined:
    """`head`, then `size` bytes of `f` from where it is, then `tail`, as one seekable file."""
    return _Joined(head, f, size, tail)


def signed_module(payload: BinaryIO, size: int, signer: SigningKey, name: str, timestamp: int) -> _Joined:
    """The inner blob of a `.nup`: a module payload as its own one-pass signed message.

    Every real file's blob is one: a DSA/SHA-1 one-pass packet, a binary
    literal named `module_inc.dat` (`NOD32.LIC` in files before 2013), the
    payload, a v3 DSA signature, all by the vendor's legacy key. The
    payload is read once here, for the signature, and is not held in memory.
    """
    start = payload.tell()
    h = openpgp.new_hash(signer.hash_algo)
    for chunk in _read_chunks(payload, size):
        h.update(chunk)
    payload.seek(start)
    literal = pgpwriter.literal_header(name, timestamp)
    head = (pgpwriter.one_pass_packet(openpgp.SIG_BINARY, signer.hash_algo, signer.public)
            + pgpwriter.packet_header(openpgp.TAG_LITERAL, len(literal) + size) + literal)
    tail = pgpwriter.signature_packet(signer.private, signer.public, version=3, sig_type=openpgp.SIG_BINARY,
                                      hash_algo=signer.hash_algo, created=timestamp, document_hash=h)
    return _Joined(head, payload, size, tail)


def update_info_text(update_info: list[tuple[str, str]], size: int, crc: int, data_name: str) -> bytes:
    """The literal data's text, in the order and with the line endings of the vendor's files.

    A leading empty line, the index's keys with `filesize=` and `crc=`
    (decimal) before `buildregname=`, `filename=` (quoted, the module's
    `.dat` name) last, an empty line, `[update_data]`, the bytes 1A 00.
    """
    keys = [k for k, _ in update_info]
    at = keys.index("buildregname") if "buildregname" in keys else len(keys)
    lines = [*update_info[:at], ("filesize", str(size)), ("crc", str(crc)), *update_info[at:],
             ("filename", f'"{data_name}"')]
    text = "\r\n[update_info]\r\n" + "".join(f"{k}={v}\r\n" for k, v in lines) + "\r\n[update_data]\r\n"
    return text.encode() + b"\x1a\x00"


def build_nup(
    out_fileobj: BinaryIO,
    *,
    key: SigningKey,
    update_info: list[tuple[str, str]],
    blob: bytes | tuple[BinaryIO, int],
    literal_name: str,
    data_name: str | None = None,
    embed_key: bool = True,
    sig_version: int = 3,
    extra_signers: Iterable[SigningKey] = (),
    timestamp: int,
) -> None:
    """Write a `.nup` the way the vendor does.

    `blob` is bytes or (seekable file, length): the file is read twice, once
    for the CRC that the text before it declares, once to write and hash it.
    `filesize=`, `crc=` and `filename=` (`data_name`, by default
    `literal_name`'s stem + `.dat`) are added to the caller's keys (see
    :func:`update_info_text`). One-pass packets and signatures come in the
    same order, `key` first, each one-pass packet marked "last", as in the
    vendor's files. Deterministic for the same keys and input.
    """
    for k, v in update_info:
        if k in _COMPUTED_KEYS or not k or "=" in k or re.search(r"[\r\n]", k + v):
            raise ValueError(f"bad update_info entry {k}={v!r}")
    blob_f, size = (io.BytesIO(blob), len(blob)) if isinstance(blob, bytes | bytearray) else blob
    start = blob_f.tell()
    crc = 0
    for chunk in _read_chunks(blob_f, size):
        crc = zlib.crc32(chunk, crc)
    blob_f.seek(start)

    data_name = data_name or literal_name.split(".", 1)[0] + ".dat"
    head = update_info_text(update_info, size, crc, data_name)
    signers = [key, *extra_signers]
    hashes = {s.hash_algo: openpgp.new_hash(s.hash_algo) for s in signers}

    if embed_key:
        out_fileobj.write(pgpwriter.encode_packet(openpgp.TAG_ESET_KEY, b"\x01" + key.block))
    for s in signers:
        out_fileobj.write(pgpwriter.one_pass_packet(openpgp.SIG_BINARY, s.hash_algo, s.public, last=True))
    lit = pgpwriter.literal_header(literal_name, timestamp)
    out_fileobj.write(pgpwriter.packet_header(openpgp.TAG_LITERAL, len(lit) + len(head) + size) + lit)
    for data in itertools.chain([head], _read_chunks(blob_f, size)):
        out_fileobj.write(data)
        for h in hashes.values():
            h.update(data)
    for s in signers:
        out_fileobj.write(
            pgpwriter.signature_packet(
                s.private,
                s.public,
                version=sig_version,
                sig_type=openpgp.SIG_BINARY,
                hash_algo=s.hash_algo,
                created=timestamp,
                document_hash=hashes[s.hash_algo],
            )
        )
