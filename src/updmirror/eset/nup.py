"""Inspect, verify and write `.nup` update files.

A `.nup` is an OpenPGP one-pass signed message (see the format notes,
section 3): an optional tag-15 packet holding the vendor's public key,
one-pass signature packets, one literal data packet, the signatures. The
literal data is an `[update_info]` CRLF text block, `[update_data]`, the
bytes 0x1A 0x00 and an inner blob whose size and CRC-32 the text declares.

Verification is one streaming pass: the literal data goes through the
signature hashes and the payload parser chunk by chunk, so a file of any
size is checked in constant memory. A file is good when a signature by a
*pinned* key (by fingerprint) verifies; other signatures, such as the
vendor's DSA one by a key nobody has, are reported but do not matter.

A file whose every signature is by a listed *legacy* key that the caller
cannot check (the vendor's modules of 2010, DSA only) fails with
:class:`UncheckedSignatureError`, a SignatureError that carries what was
checked: a caller that does nothing special refuses it, the sync may
accept it by policy.

Packet handling is in :mod:`.openpgp` (no OpenPGP library: see there why).
"""

from __future__ import annotations

import os
import re
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import BinaryIO

from updmirror.errors import FormatError, SignatureError

from . import openpgp
from .openpgp import PublicKey

CHUNK = 256 * 1024
#: The vendor's RSA update key was made on 2013-04-23; every real file signed
#: since carries its signature (files of 2011 were signed again then). A file
#: signed by the legacy DSA key alone must say it was signed before that.
LEGACY_SIGNED_BEFORE = 1366726393
#: The `[update_info]` text of real files is a few hundred bytes.
MAX_UPDATE_INFO = 64 * 1024
#: The line that ends the text: at a line start, CRLF or LF after it.
_DATA_LINE = re.compile(rb"(?<=\n)[ \t]*\[update_data\][ \t]*\r?\n")
_BLOB_MARK = b"\x1a\x00"
_COMPUTED_KEYS = ("filesize", "crc", "filename")


@dataclass(frozen=True)
class SignatureCheck:
    key_id: str  # 16 upper-case hex digits, "" if the signature names none
    fingerprint: str | None  # of the key used, or from the signature, if known
    version: int  # 3 or 4
    algorithm: str  # "RSA", "DSA"
    hash: str  # "SHA512", "SHA1", ...
    verified: bool
    reason: str  # "good", or why not
    created: int | None = None  # the signature's own creation time, as it says


@dataclass(frozen=True)
class NupInfo:
    literal_name: str  # not covered by any signature (OpenPGP signs only the data)
    update_info: dict[str, str]
    filesize: int
    crc: int
    embedded_key_fingerprint: str | None
    signatures: tuple[SignatureCheck, ...]
    signed_by: str | None


class UncheckedSignatureError(SignatureError):
    """Every signature is by a legacy key the caller cannot check.

    The structure, inner `filesize` and CRC-32 are good (`info` says what
    was found); only the signatures remain unchecked.
    """

    def __init__(self, message: str, info: NupInfo, key_ids: tuple[str, ...]) -> None:
        super().__init__(message)
        self.info = info
        self.key_ids = key_ids


def normalise_fingerprint(fpr: str) -> str:
    return fpr.replace(" ", "").upper()


def inspect(path_or_fileobj: str | os.PathLike | BinaryIO, source: str) -> NupInfo:
    """Parse a `.nup` and check its structure, inner size and CRC.

    Signatures are parsed but not verified (each says "not checked").
    """
    return _open_and_walk(path_or_fileobj, source, (), check_signatures=False)


def verify(
    path: str | os.PathLike | BinaryIO,
    source: str,
    pinned: Iterable[str],
    extra_keys: Iterable[PublicKey] = (),
    legacy_key_ids: Iterable[str] = (),
) -> NupInfo:
    """Like :func:`inspect`, and require a good signature by a pinned key.

    Candidate keys are the one embedded in the file and `extra_keys`; a key
    only counts if its fingerprint is in `pinned`, so an embedded key proves
    nothing by being there. A file signed only by `legacy_key_ids` keys that
    no candidate key checks raises :class:`UncheckedSignatureError` (see
    :func:`only_legacy_signatures`); any other failure a SignatureError.
    """
    pins = {normalise_fingerprint(p) for p in pinned}
    info = _open_and_walk(path, source, extra_keys, check_signatures=True)
    for check in info.signatures:
        if check.verified and check.fingerprint in pins:
            return replace(info, signed_by=check.fingerprint)
    legacy = only_legacy_signatures(info.embedded_key_fingerprint,
                                    [(c.algorithm, c.key_id) for c in info.signatures], legacy_key_ids)
    if legacy and all(c.reason == "public key not available" for c in info.signatures):
        late = [c for c in info.signatures if c.created is None or c.created >= LEGACY_SIGNED_BEFORE]
        if late:
            raise SignatureError(
                f"{source}: signed only by the legacy DSA key {', '.join(legacy)}, but "
                f"{_when(late[0].created)}, when the vendor already signed with its RSA key (since "
                f"{_when(LEGACY_SIGNED_BEFORE)}): not one of its old modules, and no signature can be checked")
        raise UncheckedSignatureError(
            f"{source}: signed only by the legacy DSA key {', '.join(legacy)}, whose public key "
            "no file carries: its size and inner CRC-32 are good, its signature cannot be checked",
            info, legacy)
    found = "; ".join(f"{c.key_id or '?'} ({c.algorithm}/{c.hash}): {c.reason}" for c in info.signatures)
    raise SignatureError(
        f"{source}: no signature by a pinned key verifies. Signatures: {found}. "
        f"Pinned: {', '.join(sorted(pins)) or 'none'}. "
        "Check the pinned fingerprint and key file in the configuration."
    )


def _when(ts: int | None) -> str:
    return "at no stated time" if ts is None else time.strftime("%Y-%m-%d", time.gmtime(ts))


def only_legacy_signatures(embedded_key_fingerprint: str | None, signers: Iterable[tuple[str, str]],
                           legacy_key_ids: Iterable[str]) -> tuple[str, ...]:
    """The legacy key IDs of a file signed by nothing else, or () if it is not such a file.

    As narrow as the real files allow (nod1F1C.nup, SELFDEFENSE641): no
    key packet, at least one signature, and every signature DSA by a listed
    key ID. A file with a key packet or any other signature is never one:
    the vendor's current files carry both, and must verify. (:func:`verify`
    also wants the signatures made before LEGACY_SIGNED_BEFORE.)
    """
    legacy = {k.upper() for k in legacy_key_ids}
    signers = list(signers)
    if embedded_key_fingerprint is not None or not signers or not legacy:
        return ()
    if all(algo == "DSA" and key_id.upper() in legacy for algo, key_id in signers):
        return tuple(sorted({key_id.upper() for _, key_id in signers}))
    return ()


def announced_signers(path: str | os.PathLike, source: str) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    """(embedded key fingerprint, (algorithm, key ID) of each one-pass packet), read from the head only.

    What a file says it is signed by, without reading its data: for a file
    that was verified or accepted before, to tell which of the two it was.
    """
    with open(path, "rb") as f:
        src = openpgp.Source(f)
        try:
            pkt = openpgp.read_packet(src)
            embedded = None
            if pkt is not None and pkt.tag == openpgp.TAG_ESET_KEY:
                found = openpgp.parse_key_block(pkt.body.read_all()[1:])
                embedded = found[0].fingerprint if found else None
                pkt = openpgp.read_packet(src)
            signers = []
            while pkt is not None and pkt.tag == openpgp.TAG_ONE_PASS:
                op = openpgp.parse_one_pass(pkt.body.read_all())
                signers.append((openpgp.algo_name(op.pubkey_algo), op.key_id))
                pkt = openpgp.read_packet(src)
        except openpgp.PGPError as e:
            raise FormatError(f"{source}: not a valid .nup file: {e}") from None
    return embedded, tuple(signers)


def _open_and_walk(
    path_or_fileobj, source: str, extra_keys: Iterable[PublicKey], check_signatures: bool
) -> NupInfo:
    if hasattr(path_or_fileobj, "read"):
        return _walk(path_or_fileobj, source, list(extra_keys), check_signatures)
    with open(path_or_fileobj, "rb") as f:
        return _walk(f, source, list(extra_keys), check_signatures)


def _walk(f: BinaryIO, source: str, keys: list[PublicKey], check_signatures: bool) -> NupInfo:
    src = openpgp.Source(f)
    try:
        return _walk_packets(src, source, keys, check_signatures)
    except openpgp.Truncated as e:
        raise SignatureError(f"{source}: the file is truncated: {e}") from None
    except openpgp.PGPError as e:
        raise FormatError(f"{source}: not a valid .nup file: {e}") from None


def _walk_packets(src: openpgp.Source, source: str, keys: list[PublicKey], check: bool) -> NupInfo:
    def next_packet(what: str) -> openpgp.Packet:
        p = openpgp.read_packet(src)
        if p is None:
            raise SignatureError(f"{source}: the file is truncated: it ends before {what}")
        return p

    pkt = next_packet("any packet")
    embedded = None
    if pkt.tag == openpgp.TAG_ESET_KEY:
        body = pkt.body.read_all()
        if body[:1] != b"\x01":
            raise FormatError(f"{source}: key packet (tag 15) of unknown version {body[:1].hex() or 'none'}")
        found = openpgp.parse_key_block(body[1:])
        if not found:
            raise FormatError(f"{source}: key packet (tag 15) holds no usable public key")
        embedded = found[0].fingerprint
        keys = found + keys
        pkt = next_packet("the one-pass signature packets")

    one_pass = []
    while pkt.tag == openpgp.TAG_ONE_PASS:
        one_pass.append(openpgp.parse_one_pass(pkt.body.read_all()))
        pkt = next_packet("the literal data")
    if pkt.tag == openpgp.TAG_COMPRESSED:
        raise FormatError(f"{source}: compressed OpenPGP data; .nup files are never compressed")
    if pkt.tag != openpgp.TAG_LITERAL or not one_pass:
        raise FormatError(
            f"{source}: expected one-pass signature packets then literal data, "
            f"found packet tag {pkt.tag} at byte {pkt.offset}"
        )

    fmt_and_len = pkt.body.read_exact(2)
    literal_name = pkt.body.read_exact(fmt_and_len[1]).decode("utf-8", "replace")
    pkt.body.read_exact(4)  # date: informational only
    # Hashes are chosen from the one-pass packets: that is their purpose,
    # and what lets us verify without reading the data twice.
    # Only for signatures whose key we hold: the vendor's DSA/SHA-1 signature is
    # by a key no file carries, and hashing every byte for it costs ~15% of a sync.
    known = {k.key_id for k in keys} | {"0" * 16}   # all zeros: a wildcard key ID
    hashes = {}
    if check:
        hashes = {
            op.hash_algo: openpgp.new_hash(op.hash_algo)
            for op in one_pass if op.hash_algo in openpgp.HASHES and op.key_id in known
        }
    payload = _Payload(source)
    for chunk in pkt.body.chunks(CHUNK):
        for h in hashes.values():
            h.update(chunk)
        payload.feed(chunk)
    payload.finish()

    checks = []
    for i in range(len(one_pass)):
        pkt = next_packet(f"signature {i + 1} of {len(one_pass)}")
        if pkt.tag != openpgp.TAG_SIGNATURE:
            raise FormatError(
                f"{source}: expected a signature packet at byte {pkt.offset}, found tag {pkt.tag}"
            )
        checks.append(_check(pkt.body.read_all(), keys, hashes, check))
    if not src.at_eof():
        raise SignatureError(f"{source}: unexpected data after the last signature, at byte {src.offset}")

    return NupInfo(
        literal_name=literal_name,
        update_info=payload.info,
        filesize=payload.filesize,
        crc=payload.crc,
        embedded_key_fingerprint=embedded,
        signatures=tuple(checks),
        signed_by=None,
    )


def _check(body: bytes, keys: list[PublicKey], hashes: dict, check: bool) -> SignatureCheck:
    try:
        sig = openpgp.parse_signature(body)
    except openpgp.Unsupported as e:
        # Not fatal: another signature may still be by the pinned key.
        return SignatureCheck("", None, body[0] if body else 0, "?", "?", False, str(e))
    candidates = [
        k
        for k in keys
        if (k.fingerprint == sig.issuer_fingerprint if sig.issuer_fingerprint else k.key_id == sig.key_id)
    ]
    result = SignatureCheck(
        key_id=sig.key_id or "",
        fingerprint=sig.issuer_fingerprint or (candidates[0].fingerprint if candidates else None),
        version=sig.version,
        algorithm=openpgp.algo_name(sig.pubkey_algo),
        hash=openpgp.hash_name(sig.hash_algo),
        verified=False,
        reason="not checked",
        created=sig.created,
    )
    if not check:
        return result
    if sig.sig_type != openpgp.SIG_BINARY:
        return replace(result, reason=f"signature type 0x{sig.sig_type:02x}, not a binary document signature")
    if not candidates:
        return replace(result, reason="public key not available")
    if sig.hash_algo not in hashes:
        return replace(result, reason=f"{result.hash} was not announced by a one-pass packet")
    reason = ""
    # Several candidates only if short key IDs collide; any good one will do.
    for key in candidates:
        reason = openpgp.check_signature(sig, key, hashes[sig.hash_algo])
        if reason is None:
            return replace(result, fingerprint=key.fingerprint, verified=True, reason="good")
    return replace(result, reason=reason)


def parse_crc(text: str) -> tuple[int, ...]:
    """The values a `crc=` field may mean, most likely first.

    Decimal, 0x-prefixed hex and bare 8-digit hex all occur in the wild; an
    8-digit string of decimal digits is ambiguous, so both readings count.
    """
    t = text.strip(" \t")
    values: list[int] = []
    if re.fullmatch(r"0[xX][0-9a-fA-F]{1,8}", t):
        values.append(int(t, 16))
    else:
        if re.fullmatch(r"[0-9]{1,10}", t):
            values.append(int(t))
        if re.fullmatch(r"[0-9a-fA-F]{8}", t):
            values.append(int(t, 16))
    values = [v for v in values if v <= 0xFFFFFFFF]
    if not values:
        raise ValueError(f"crc={text!r} is neither decimal nor hexadecimal")
    return tuple(values)


def _excerpt(line: str, limit: int = 60) -> str:
    return repr(line if len(line) <= limit else line[:limit] + "...")


class _Payload:
    """Parses the literal data as it streams past: text, marker, inner blob."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._head: bytearray | None = bytearray()
        self.info: dict[str, str] = {}
        self.filesize = 0
        self._crcs: tuple[int, ...] = ()
        self.crc = 0
        self._blob_len = 0
        self._blob_crc = 0

    def feed(self, chunk: bytes) -> None:
        if self._head is None:
            self._blob(chunk)
            return
        self._head += chunk
        found = _DATA_LINE.search(self._head)
        if found is None or len(self._head) < found.end() + len(_BLOB_MARK):
            if len(self._head) > MAX_UPDATE_INFO:
                raise FormatError(
                    f"{self.source}: no [update_data] line in the first {MAX_UPDATE_INFO} bytes "
                    "of the literal data"
                )
            return
        head, self._head = self._head, None
        self._parse_info(bytes(head[: found.start()]))
        end = found.end()
        if head[end : end + 2] != _BLOB_MARK:
            raise FormatError(
                f"{self.source}: [update_data] is followed by the bytes {bytes(head[end:end + 2]).hex(' ')}, "
                "not 1a 00"
            )
        self._blob(head[end + 2 :])

    def _blob(self, chunk: bytes) -> None:
        self._blob_len += len(chunk)
        self._blob_crc = zlib.crc32(chunk, self._blob_crc)

    def _parse_info(self, raw: bytes) -> None:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise FormatError(
                f"{self.source}: [update_info] block is not UTF-8 text "
                f"(byte {raw[e.start]:#04x} at offset {e.start} of the literal data)"
            ) from None
        # The vendor writes CRLF and starts with an empty line (every real
        # file, 2010 to 2023); LF and any number of leading blank lines are
        # taken too.
        lines = [line.removesuffix("\r") for line in text.split("\n")]
        first = next((i for i, line in enumerate(lines) if line.strip()), None)
        if first is None:
            raise FormatError(f"{self.source}: literal data has no [update_info] line before [update_data]")
        if lines[first].strip().lower() != "[update_info]":
            raise FormatError(
                f"{self.source}: literal data line {first + 1} is {_excerpt(lines[first])}, "
                "expected [update_info] (after optional blank lines)"
            )
        for number, line in enumerate(lines[first + 1 :], start=first + 2):
            if not line.strip():
                continue
            key, eq, value = line.partition("=")
            key = key.strip()
            if not eq or not key:
                raise FormatError(
                    f"{self.source}: [update_info] line {number} is not key=value: {_excerpt(line)}"
                )
            if key in self.info:
                raise FormatError(f"{self.source}: [update_info] has {key}= twice (line {number})")
            self.info[key] = value
        for key in ("filesize", "crc"):
            if key not in self.info:
                raise FormatError(f"{self.source}: [update_info] has no {key}= line")
        filesize = self.info["filesize"].strip(" \t")
        if not re.fullmatch(r"[0-9]{1,15}", filesize):
            raise FormatError(f"{self.source}: filesize={self.info['filesize']!r} is not a number")
        self.filesize = int(filesize)
        try:
            self._crcs = parse_crc(self.info["crc"])
        except ValueError as e:
            raise FormatError(f"{self.source}: {e}") from None
        self.crc = self._crcs[0]

    def finish(self) -> None:
        if self._head is not None:
            raise FormatError(f"{self.source}: literal data ends before [update_data] and the bytes 1A 00")
        if self._blob_len != self.filesize:
            raise SignatureError(
                f"{self.source}: inner data is {self._blob_len} bytes, "
                f"[update_info] says filesize={self.filesize}"
            )
        if self._blob_crc not in self._crcs:
            raise SignatureError(
                f"{self.source}: inner data CRC-32 is {self._blob_crc:08x}, "
                f"[update_info] says crc={self.info['crc']} ({self.crc:08x})"
            )
        self.crc = self._blob_crc
