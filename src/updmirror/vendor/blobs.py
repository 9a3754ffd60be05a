"""Pseudo-random inner blobs, made on the fly and never held in memory.

A blob is the AES-CTR key stream for a key derived from (seed, path): it
looks like the vendor's compressed payloads (incompressible), costs about
nothing to make, and is the same for the same seed. `BlobReader` is a
seekable file object over it, which is what `build_nup` streams from.
"""

from __future__ import annotations

import hashlib
import io

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

_ZEROS = bytes(1 << 20)
_ZERO_VIEW = memoryview(_ZEROS)


class BlobReader(io.RawIOBase):
    def __init__(self, seed: int, path: str, size: int) -> None:
        self._key = hashlib.sha256(f"blob:{seed}:{path}".encode()).digest()[:16]
        self._size = size
        self._pos = 0
        self._reset(0)

    def _reset(self, pos: int) -> None:
        block, skip = divmod(pos, 16)
        nonce = block.to_bytes(16, "big")
        self._enc = Cipher(algorithms.AES(self._key), modes.CTR(nonce)).encryptor()
        if skip:
            self._enc.update(bytes(skip))
        self._pos = pos

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence] + offset
        self._reset(max(0, min(target, self._size)))
        return self._pos

    def read(self, n: int = -1) -> bytes:
        left = self._size - self._pos
        n = left if n is None or n < 0 else min(n, left)
        out = bytearray()
        while len(out) < n:
            take = min(n - len(out), len(_ZEROS))
            out += self._enc.update(_ZERO_VIEW[:take])
        self._pos += n
        return bytes(out)

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)
