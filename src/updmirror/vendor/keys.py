"""The simulated vendor's signing keys.

The main key is RSA-2048 made *from the seed*, so that the same seed gives
the same key, the same fingerprint and (RSA PKCS#1 v1.5 signatures being
deterministic) the same `.nup` bytes. `cryptography` cannot generate a key
from a seed, so the primes are found here with a seeded generator and
Miller-Rabin; the key is only as secret as the seed, which is right for a
test vendor and wrong for anything else.

The second, "other" key is DSA-1024 like the vendor's legacy key. DSA
signatures use a random nonce, so files signed by it differ from run to
run whatever the key; it is therefore generated normally and kept on disk.
"""

from __future__ import annotations

import hashlib
import random
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa

from . import pgpwriter
from .nupwriter import SigningKey, generate_signing_key

VENDOR_UID = "ESET Update Signing Certificate (simulated)"
OTHER_UID = "ESET legacy DSA key (simulated)"
_E = 65537
_SMALL_PRIMES = [p for p in range(3, 2000) if all(p % d for d in range(2, int(p ** 0.5) + 1))]


def seeded_random(*parts: object) -> random.Random:
    """A generator that depends only on `parts` (stable across Python versions)."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return random.Random(int.from_bytes(digest, "big"))


def _is_probable_prime(n: int, rng: random.Random, rounds: int = 40) -> bool:
    if n < 2:
        return False
    for p in _SMALL_PRIMES:
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    for _ in range(rounds):
        a = rng.randrange(2, n - 2)
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(rng: random.Random, bits: int) -> int:
    while True:
        # Top two bits set so that p*q has exactly 2*bits bits.
        n = rng.getrandbits(bits) | (3 << (bits - 2)) | 1
        if (n - 1) % _E == 0 or any(n % p == 0 for p in _SMALL_PRIMES):
            continue
        # One cheap round weeds out almost every composite before the full test.
        if pow(2, n - 1, n) == 1 and _is_probable_prime(n, rng):
            return n


@lru_cache(maxsize=8)  # the prime search takes a second; tests make many repositories
def deterministic_rsa(seed: int, bits: int = 2048) -> rsa.RSAPrivateKey:
    rng = seeded_random("vendor-rsa-key", seed, bits)
    p = _prime(rng, bits // 2)
    q = _prime(rng, bits // 2)
    while q == p:
        q = _prime(rng, bits // 2)
    phi = (p - 1) * (q - 1)
    d = pow(_E, -1, phi)
    public = rsa.RSAPublicNumbers(_E, p * q)
    numbers = rsa.RSAPrivateNumbers(
        p=p, q=q, d=d, dmp1=d % (p - 1), dmq1=d % (q - 1), iqmp=pow(q, -1, p), public_numbers=public
    )
    return numbers.private_key()


def vendor_key(seed: int, created: int) -> SigningKey:
    """The vendor's main signing key for `seed` (same seed, same key)."""
    private = deterministic_rsa(seed)
    public, block = pgpwriter.transferable_public_key(private, created, VENDOR_UID)
    return SigningKey(private, public, block)


def other_key(created: int) -> SigningKey:
    return generate_signing_key(OTHER_UID, algorithm="dsa", created=created)


def save(key: SigningKey, pem_path: Path, asc_path: Path | None = None) -> None:
    pem_path.write_bytes(key.to_pem())
    pem_path.chmod(0o600)
    if asc_path is not None:
        asc_path.write_text(key.armored_public_key_block())


def load(pem_path: Path) -> SigningKey:
    return SigningKey.from_pem(pem_path.read_bytes(), source=str(pem_path))
