"""The simulated vendor's signing keys.

The main key is RSA-2048 made *from the seed*, so that the same seed gives
the same key, the same fingerprint and (RSA PKCS#1 v1.5 signatures being
deterministic) the same `.nup` bytes. `cryptography` cannot generate a key
from a seed, so the primes are found here with a seeded generator and
Miller-Rabin; the key is only as secret as the seed, which is right for a
test vendor and wrong for anything else.

The second, "other" key is DSA-1024/160 like the vendor's legacy key, also
made from the seed; its signatures take their nonce from the key and the
digest (see `pgpwriter`), so they too are the same for the same seed.

The vendor's key block carries a certification by a third key that is in
no file; the simulation's is one fixed key, the same for every seed.
"""

from __future__ import annotations

import hashlib
import random
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import dsa, rsa

from updmirror.eset import openpgp

from . import pgpwriter
from .nupwriter import SigningKey

VENDOR_UID = "ESET Update Signing Certificate (simulated)"
OTHER_UID = "ESET legacy DSA key (simulated)"
#: Seconds between the key's creation and the certification of its user ID (about 2 min in the real key).
CERTIFIED_AFTER = 135
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
def deterministic_rsa(seed: int | str, bits: int = 2048) -> rsa.RSAPrivateKey:
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
    certifier = deterministic_rsa("certifier")
    certifier_key, _ = pgpwriter.transferable_public_key(certifier, created, "certifier (simulated)")
    public, block = pgpwriter.transferable_public_key(
        private, created, VENDOR_UID, certifier=(certifier, certifier_key), certified=created + CERTIFIED_AFTER)
    return SigningKey(private, public, block)


@lru_cache(maxsize=8)
def deterministic_dsa(seed: int, bits: int = 1024, qbits: int = 160) -> dsa.DSAPrivateKey:
    """DSA parameters and key from the seed: q prime, p = q*m + 1 prime, g of order q."""
    rng = seeded_random("vendor-dsa-key", seed, bits, qbits)
    while True:
        q = rng.getrandbits(qbits) | (1 << (qbits - 1)) | 1
        if _is_probable_prime(q, rng):
            break
    while True:
        m = rng.getrandbits(bits - qbits) | (1 << (bits - qbits - 1))
        m -= m % 2   # p = q*m + 1 must be odd
        p = q * m + 1
        if p.bit_length() != bits or any(p % sp == 0 for sp in _SMALL_PRIMES):
            continue
        if pow(2, p - 1, p) == 1 and _is_probable_prime(p, rng):
            break
    h = 2
    while (g := pow(h, (p - 1) // q, p)) == 1:
        h += 1
    x = rng.randrange(1, q)
    params = dsa.DSAParameterNumbers(p, q, g)
    return dsa.DSAPrivateNumbers(x, dsa.DSAPublicNumbers(pow(g, x, p), params)).private_key()


def other_key(seed: int, created: int) -> SigningKey:
    """The legacy DSA key for `seed`, whose public part the vendor never publishes."""
    public, block = pgpwriter.transferable_public_key(deterministic_dsa(seed), created, OTHER_UID,
                                                      openpgp.HASH_SHA1)
    return SigningKey(deterministic_dsa(seed), public, block)


def save(key: SigningKey, pem_path: Path, asc_path: Path | None = None) -> None:
    pem_path.write_bytes(key.to_pem())
    pem_path.chmod(0o600)
    if asc_path is not None:
        asc_path.write_text(key.armored_public_key_block())


def load(pem_path: Path) -> SigningKey:
    return SigningKey.from_pem(pem_path.read_bytes(), source=str(pem_path))
