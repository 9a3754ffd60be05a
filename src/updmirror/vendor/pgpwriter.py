"""OpenPGP writers for the simulated vendor and the tests.

The mirror only reads (:mod:`updmirror.eset.openpgp`); everything that
makes packets, keys and signatures lives here, beside the generator that
uses it, so the format room the mirror trusts has no writer in it.
"""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives.asymmetric import dsa, padding, rsa, utils

from updmirror.eset import openpgp
from updmirror.eset.openpgp import PublicKey


def armor(data: bytes, kind: str = "PUBLIC KEY BLOCK") -> str:
    b64 = base64.b64encode(data).decode()
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    crc = base64.b64encode(openpgp.crc24(data).to_bytes(3, "big")).decode()
    return "\n".join([f"-----BEGIN PGP {kind}-----", "", *lines, "=" + crc, f"-----END PGP {kind}-----", ""])





def encode_packet(tag: int, body: bytes, old_format: bool = False) -> bytes:
    return packet_header(tag, len(body), old_format) + body


def packet_header(tag: int, length: int, old_format: bool = False) -> bytes:
    if old_format:
        if length < 0x100:
            return bytes([0x80 | tag << 2, length])
        if length < 0x10000:
            return bytes([0x80 | tag << 2 | 1]) + length.to_bytes(2, "big")
        return bytes([0x80 | tag << 2 | 2]) + length.to_bytes(4, "big")
    if length < 192:
        return bytes([0xC0 | tag, length])
    if length < 8384:
        length -= 192
        return bytes([0xC0 | tag, (length >> 8) + 192, length & 0xFF])
    return bytes([0xC0 | tag, 255]) + length.to_bytes(4, "big")


def encode_partial_packet(tag: int, body: bytes, chunk_power: int = 9) -> bytes:
    """A new-format packet in partial-length chunks, as gpg writes streams."""
    size, out, pos = 1 << chunk_power, [bytes([0xC0 | tag])], 0
    while len(body) - pos > size:
        out += [bytes([0xE0 | chunk_power]), body[pos : pos + size]]
        pos += size
    out.append(packet_header(tag, len(body) - pos)[1:] + body[pos:])
    return b"".join(out)


def encode_mpi(n: int) -> bytes:
    return n.bit_length().to_bytes(2, "big") + n.to_bytes((n.bit_length() + 7) // 8, "big")


def public_key_body(key: rsa.RSAPublicKey | dsa.DSAPublicKey, created: int) -> bytes:
    if isinstance(key, rsa.RSAPublicKey):
        nums = key.public_numbers()
        algo, values = openpgp.ALGO_RSA, (nums.n, nums.e)
    else:
        nums = key.public_numbers()
        p = nums.parameter_numbers
        algo, values = openpgp.ALGO_DSA, (p.p, p.q, p.g, nums.y)
    return b"\x04" + created.to_bytes(4, "big") + bytes([algo]) + b"".join(encode_mpi(v) for v in values)


def one_pass_packet(sig_type: int, hash_algo: int, key: PublicKey, last: bool) -> bytes:
    body = bytes([3, sig_type, hash_algo, key.algo]) + bytes.fromhex(key.key_id) + bytes([int(last)])
    return encode_packet(openpgp.TAG_ONE_PASS, body)


def literal_header(name: str, date: int) -> bytes:
    """The fields before a binary literal data packet's content."""
    raw = name.encode()[:255]
    return b"b" + bytes([len(raw)]) + raw + date.to_bytes(4, "big")


def _sign(private: rsa.RSAPrivateKey | dsa.DSAPrivateKey, hash_algo: int, digest: bytes) -> bytes:
    prehashed = utils.Prehashed(openpgp.HASHES[hash_algo][2]())
    if isinstance(private, rsa.RSAPrivateKey):
        return encode_mpi(int.from_bytes(private.sign(digest, padding.PKCS1v15(), prehashed), "big"))
    r, s = utils.decode_dss_signature(private.sign(digest, prehashed))
    return encode_mpi(r) + encode_mpi(s)


def _subpacket(kind: int, data: bytes) -> bytes:
    return bytes([len(data) + 1, kind]) + data  # all ours are < 191 bytes


def signature_packet(
    private: rsa.RSAPrivateKey | dsa.DSAPrivateKey,
    key: PublicKey,
    *,
    version: int,
    sig_type: int,
    hash_algo: int,
    created: int,
    document_hash,
    hashed_extra: bytes = b"",
) -> bytes:
    """A complete signature packet; `document_hash` has seen the document."""
    h = document_hash.copy()
    if version == 3:
        h.update(bytes([sig_type]) + created.to_bytes(4, "big"))
        digest = h.digest()
        body = (
            bytes([3, 5, sig_type])
            + created.to_bytes(4, "big")
            + bytes.fromhex(key.key_id)
            + bytes([key.algo, hash_algo])
        )
    elif version == 4:
        hashed = (
            _subpacket(2, created.to_bytes(4, "big"))
            + _subpacket(33, b"\x04" + bytes.fromhex(key.fingerprint))
            + hashed_extra
        )
        unhashed = _subpacket(16, bytes.fromhex(key.key_id))
        head = bytes([4, sig_type, key.algo, hash_algo]) + len(hashed).to_bytes(2, "big") + hashed
        h.update(head + b"\x04\xff" + len(head).to_bytes(4, "big"))
        digest = h.digest()
        body = head + len(unhashed).to_bytes(2, "big") + unhashed
    else:
        raise ValueError(f"cannot write version {version} signatures")
    return encode_packet(openpgp.TAG_SIGNATURE, body + digest[:2] + _sign(private, hash_algo, digest))


def transferable_public_key(
    private: rsa.RSAPrivateKey | dsa.DSAPrivateKey, created: int, uid: str, hash_algo: int = openpgp.HASH_SHA512
) -> tuple[PublicKey, bytes]:
    """The key and its packets: public key, user ID, positive self-signature.

    The self-signature makes the block acceptable to `gpg --import`.
    """
    key = openpgp.parse_public_key(public_key_body(private.public_key(), created))
    raw_uid = uid.encode()
    h = openpgp.new_hash(hash_algo)
    h.update(openpgp.key_hash_prefix(key.body) + key.body + b"\xb4" + len(raw_uid).to_bytes(4, "big") + raw_uid)
    cert = signature_packet(
        private,
        key,
        version=4,
        sig_type=openpgp.SIG_POSITIVE_CERT,
        hash_algo=hash_algo,
        created=created,
        document_hash=h,
        hashed_extra=_subpacket(27, b"\x03"),  # key flags: certify, sign
    )
    block = encode_packet(openpgp.TAG_PUBLIC_KEY, key.body) + encode_packet(openpgp.TAG_USER_ID, raw_uid) + cert
    return key, block
