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


def build_nup(
    out_fileobj: BinaryIO,
    *,
    key: SigningKey,
    update_info: list[tuple[str, str]],
    blob: bytes | tuple[BinaryIO, int],
    literal_name: str,
    embed_key: bool = True,
    sig_version: int = 3,
    extra_signers: Iterable[SigningKey] = (),
    timestamp: int,
) -> None:
    """Write a `.nup` the way the vendor does.

    `blob` is bytes or (seekable file, length): the file is read twice, once
    for the CRC that the text before it declares, once to write and hash it.
    `filesize=`, `crc=` and `filename=` (= `literal_name`) are added after
    the caller's keys. Deterministic for RSA signers.
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

    lines = [*update_info, ("filesize", str(size)), ("crc", str(crc)), ("filename", literal_name)]
    text = "[update_info]\r\n" + "".join(f"{k}={v}\r\n" for k, v in lines) + "[update_data]\r\n"
    head = text.encode() + b"\x1a\x00"
    signers = [key, *extra_signers]
    hashes = {s.hash_algo: openpgp.new_hash(s.hash_algo) for s in signers}

    if embed_key:
        out_fileobj.write(pgpwriter.encode_packet(openpgp.TAG_ESET_KEY, b"\x01" + key.block, old_format=True))
    for i, s in enumerate(signers):
        last = i == len(signers) - 1
        out_fileobj.write(pgpwriter.one_pass_packet(openpgp.SIG_BINARY, s.hash_algo, s.public, last=last))
    lit = pgpwriter.literal_header(literal_name, timestamp)
    out_fileobj.write(pgpwriter.packet_header(openpgp.TAG_LITERAL, len(lit) + len(head) + size) + lit)
    for data in itertools.chain([head], _read_chunks(blob_f, size)):
        out_fileobj.write(data)
        for h in hashes.values():
            h.update(data)
    # One-pass signatures nest: the last announced is the first to follow.
    for s in reversed(signers):
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
