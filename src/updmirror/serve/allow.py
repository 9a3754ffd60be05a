"""The network allow-list: which client addresses may talk to the server."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from updmirror.errors import ConfigError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class AllowList:
    def __init__(self, networks: Iterable[str]):
        try:
            self.networks: tuple[Network, ...] = tuple(
                ipaddress.ip_network(n, strict=False) for n in networks)
        except ValueError as exc:
            raise ConfigError(f"[http] allow: {exc}") from None
        self._cache: dict[str, bool] = {}

    def permits(self, address: str) -> bool:
        """Whether `address` (as the socket reports it) is inside a listed network.

        An IPv4 client on a dual-stack socket shows up as ::ffff:a.b.c.d; it is
        judged by its IPv4 address, so `10.0.0.0/8` covers it.
        """
        cached = self._cache.get(address)
        if cached is not None:
            return cached
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        verdict = any(ip.version == n.version and ip in n for n in self.networks)
        if len(self._cache) > 65536:
            self._cache.clear()
        self._cache[address] = verdict
        return verdict


def is_loopback_host(host: str) -> bool:
    """Whether a listen host only accepts connections from this machine."""
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def client_key(addr: str) -> str:
    """Who an address is, for counting per client: an IPv4 address (mapped
    ones too), or an IPv6 address's /64, since one host usually owns a whole
    /64 and could rotate through it."""
    if ":" not in addr:
        return addr
    try:
        ip = ipaddress.ip_address(addr.split("%", 1)[0])
    except ValueError:
        return addr
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)
