"""OpenPGP writers for the simulated vendor and the tests.

The mirror only reads (:mod:`updmirror.eset.openpgp`); everything that
makes packets, keys and signatures lives here, beside the generator that
uses it, so the format room the mirror trusts has no writer in it.

What the vendor's files show (`../shared/fixtures/vendor-real/`), and so
what these write by default: old-format packet headers with the shortest
length type, v3 data signatures, and a key block of public key, user ID, a
v4 positive self-signature with the vendor's subpackets and a v4
certification by a second key. New-format and partial lengths stay
available for tests of the reader.

DSA signatures here are deterministic (the nonce comes from the key and
the digest, in the spirit of RFC 6979), so that a seed gives the same files
byte for byte; `cryptography` only signs DSA with a random nonce.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.hazmat.primitives.asymmetric import dsa, padding, rsa, utils

from updmirror.eset import openpgp
from updmirror.eset.openpgp import PublicKey

SIG_GENERIC_CERT = 0x10
#: The hashed subpackets of the vendor's self-signature, after its creation time:
#: key flags (certify, sign), preferred symmetric, hash and compression
#: algorithms, features, key server preferences, byte for byte as in its key.
VENDOR_SELF_SIG_SUBPACKETS = ((27, b"\x03"), (11, b"\x09\x08\x07\x03\x02"), (21, b"\x02\x08\x03"),
                              (22, b"\x02\x03\x01"), (30, b"\x01"), (23, b"\x80"))


def armor(data: bytes, kind: str = "PUBLIC KEY BLOCK") -> str:
    b64 = base64.b64encode(data).decode()
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    crc = base64.b64encode(openpgp.crc24(data).to_bytes(3, "big")).decode()
    return "\n".join([f"-----BEGIN PGP {kind}-----", "", *lines, "=" + crc, f"-----END PGP {kind}-----", ""])


def encode_packet(tag: int, body: bytes, old_format: bool = True) -> bytes:
    return packet_header(tag, len(body), old_format) + body


def packet_header(tag: int, length: int, old_format: bool = True) -> bytes:
    """The shortest header of its format for `length`, as the vendor writes."""
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
    out.append(packet_header(tag, len(body) - pos, old_format=False)[1:] + body[pos:])
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


def one_pass_packet(sig_type: int, hash_algo: int, key: PublicKey, last: bool = True) -> bytes:
    """`last` is 1 in every one-pass packet of the vendor's files, the first of two included."""
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
    r, s = _dsa_sign(private, digest)
    return encode_mpi(r) + encode_mpi(s)


def _dsa_sign(private: dsa.DSAPrivateKey, digest: bytes) -> tuple[int, int]:
    """FIPS 186 DSA with a nonce derived from the key and the digest.

    A test vendor's files must be the same for the same seed; the secret
    nonce never repeats for different digests, which is what DSA needs.
    """
    nums = private.private_numbers()
    params = nums.public_numbers.parameter_numbers
    p, q, g, x = params.p, params.q, params.g, nums.x
    n = q.bit_length()
    h = int.from_bytes(digest, "big") >> max(0, len(digest) * 8 - n)
    secret = x.to_bytes((n + 7) // 8, "big")
    for counter in range(1000):
        mac = hmac.new(secret, digest + counter.to_bytes(4, "big"), hashlib.sha512).digest()
        k = int.from_bytes(mac, "big") % (q - 1) + 1
        r = pow(g, k, p) % q
        s = pow(k, -1, q) * (h + x * r) % q
        if r and s:
            return r, s
    raise ValueError("DSA signing found no usable nonce")  # needs a broken key


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
    hashed: tuple[tuple[int, bytes], ...] | None = None,
    old_format: bool = True,
) -> bytes:
    """A complete signature packet; `document_hash` has seen the document.

    v4 only: `hashed` are the subpackets after the creation time; by
    default the issuer's fingerprint. The unhashed area holds the issuer's key ID.
    """
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
        if hashed is None:
            hashed = ((33, b"\x04" + bytes.fromhex(key.fingerprint)),)
        area = _subpacket(2, created.to_bytes(4, "big")) + b"".join(_subpacket(k, d) for k, d in hashed)
        unhashed = _subpacket(16, bytes.fromhex(key.key_id))
        head = bytes([4, sig_type, key.algo, hash_algo]) + len(area).to_bytes(2, "big") + area
        h.update(head + b"\x04\xff" + len(head).to_bytes(4, "big"))
        digest = h.digest()
        body = head + len(unhashed).to_bytes(2, "big") + unhashed
    else:
        raise ValueError(f"cannot write version {version} signatures")
    return encode_packet(openpgp.TAG_SIGNATURE, body + digest[:2] + _sign(private, hash_algo, digest), old_format)


def transferable_public_key(
    private: rsa.RSAPrivateKey | dsa.DSAPrivateKey,
    created: int,
    uid: str,
    hash_algo: int = openpgp.HASH_SHA512,
    *,
    certifier: tuple[rsa.RSAPrivateKey | dsa.DSAPrivateKey, PublicKey] | None = None,
    certified: int | None = None,
) -> tuple[PublicKey, bytes]:
    """The key and its packets, shaped like the vendor's key block.

    Public key, user ID, a positive self-signature with the vendor's
    subpackets (which also makes the block acceptable to `gpg --import`),
    and, given a `certifier`, its generic certification of the user ID made
    at `certified` (the vendor's key carries one by a key in no file).
    """
    key = openpgp.parse_public_key(public_key_body(private.public_key(), created))
    raw_uid = uid.encode()
    h = openpgp.new_hash(hash_algo)
    h.update(openpgp.key_hash_prefix(key.body) + key.body + b"\xb4" + len(raw_uid).to_bytes(4, "big") + raw_uid)
    block = encode_packet(openpgp.TAG_PUBLIC_KEY, key.body) + encode_packet(openpgp.TAG_USER_ID, raw_uid)
    block += signature_packet(private, key, version=4, sig_type=openpgp.SIG_POSITIVE_CERT, hash_algo=hash_algo,
                              created=created, document_hash=h, hashed=VENDOR_SELF_SIG_SUBPACKETS)
    if certifier is not None:
        signer, signer_key = certifier
        block += signature_packet(signer, signer_key, version=4, sig_type=SIG_GENERIC_CERT, hash_algo=hash_algo,
                                  created=created if certified is None else certified, document_hash=h, hashed=())
    return key, block
