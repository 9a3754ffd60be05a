"""What a fetcher needs to know: where the upstream is, who we are, how patient to be.

The upstream room owns this type; `config.py` builds it from `[upstream]`,
and the reference client builds one per source.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_USER_AGENT = ("EEA Update (Windows; U; 64bit; BPC 11.0.2044.0; OS: 10.0.26100 SP 0.0 NT; "
                      "TDB 0; CL 1.1.1; x64c; APP eea; BEO 1; ASP 0.0; FW 0.0; PX 0; PUA 0; RA 0) "
                      "updmirror")


@dataclass(frozen=True)
class UpstreamConfig:
    url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    user_agent: str = DEFAULT_USER_AGENT
    proxy: str | None = None
    connect_timeout: float = 15.0
    #: A connection that delivers nothing for this long is given up.
    stall_timeout: float = 30.0
    #: ... and one slower than this (bytes/s, averaged over stall_timeout).
    min_speed: int = 1024
    parallel: int = 8
    retries: int = 4
    allowed_hosts: tuple[str, ...] = ()
