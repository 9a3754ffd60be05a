"""upstream room: where the mirror's files come from.

One interface (:class:`Upstream`) over HTTP(S) (the vendor or an upper mirror)
and over a folder; every download bounded, retried and time-limited.
"""

from __future__ import annotations

from updmirror.config import UpstreamConfig
from updmirror.upstream.base import IndexResult, Upstream, UpstreamStats
from updmirror.upstream.errors import AuthError, NotFoundError, StalledError, TooLargeError, UpstreamError
from updmirror.upstream.folder import FolderUpstream, folder_root
from updmirror.upstream.http import HttpUpstream


def open_upstream(cfg: UpstreamConfig) -> Upstream:
    """The fetcher for `[upstream] url`: a folder for file:// or a plain path, HTTP otherwise.

    Call from inside the event loop that will use it (the HTTP session binds to it).
    """
    root = folder_root(cfg.url)
    if root is not None:
        return FolderUpstream(root)
    return HttpUpstream(cfg)


__all__ = ["Upstream", "IndexResult", "UpstreamStats", "HttpUpstream", "FolderUpstream",
           "open_upstream", "UpstreamError", "AuthError", "NotFoundError", "TooLargeError",
           "StalledError"]
