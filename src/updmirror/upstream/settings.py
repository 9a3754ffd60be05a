"""What a fetcher needs to know: where the upstream is, who we are, how patient to be.

The upstream room owns this type; `config.py` builds it from `[upstream]`,
and the reference client builds one per source.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from updmirror.eset.trees import user_agent

#: For requests of no tree in particular; an index is asked for with its own tree's agent.
DEFAULT_USER_AGENT = user_agent("ep11", mirror=True)
#: Where the upstream keeps its indexes: found out per sync, or forced.
LAYOUTS = ("auto", "vendor", "product-mirror")
#: Whether `updmirror run` listens for an upper updmirror's announcements of new snapshots.
ANNOUNCE_MODES = ("auto", "off")


@dataclass(frozen=True)
class UpstreamConfig:
    url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    #: None: each index is asked for with the User-Agent of its tree's product.
    user_agent: str | None = None
    proxy: str | None = None
    connect_timeout: float = 15.0
    #: A connection that delivers nothing for this long is given up.
    stall_timeout: float = 30.0
    #: ... and one slower than this (bytes/s, averaged over stall_timeout).
    min_speed: int = 1024
    parallel: int = 8
    retries: int = 4
    allowed_hosts: tuple[str, ...] = ()
    #: "vendor": eset_upd/<tree>/...; "product-mirror": update.ver / dll/update.ver at the URL.
    layout: str = "auto"
    #: "auto": hold a request open on an upper updmirror and sync as soon as it
    #: publishes (the vendor has no such thing; asked again now and then); "off".
    announce: str = "auto"
    #: Seconds: a lower mirror waits a random part of this after an announcement,
    #: so that hundreds of them do not all ask in the same millisecond.
    announce_jitter: float = 2.0
