"""upstream room: where the mirror's files come from.

One interface (:class:`Upstream`) over HTTP(S) (the vendor or an upper mirror),
a folder and an SMB share; every download bounded, retried and time-limited.

The fetchers are imported on first use: `config.py` needs only the settings
type, and every command loads the configuration, so importing this package
must not pull in aiohttp or smbprotocol.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from updmirror.upstream.base import IndexResult, Upstream, UpstreamStats
from updmirror.upstream.errors import AuthError, NotFoundError, StalledError, TooLargeError, UpstreamError
from updmirror.upstream.settings import UpstreamConfig

if TYPE_CHECKING:
    from updmirror.upstream.folder import FolderUpstream, folder_root
    from updmirror.upstream.http import HttpUpstream
    from updmirror.upstream.smb import SmbUpstream

_LAZY = {"HttpUpstream": "http", "FolderUpstream": "folder", "folder_root": "folder",
         "SmbUpstream": "smb"}


def open_upstream(cfg: UpstreamConfig) -> Upstream:
    """The fetcher for `[upstream] url`: a share for `\\\\server\\share` or smb://, a
    folder for file:// or a plain path, HTTP otherwise.

    Call from inside the event loop that will use it (the HTTP session binds to it).
    """
    from updmirror.unc import is_share
    from updmirror.upstream.folder import FolderUpstream, folder_root
    from updmirror.upstream.http import HttpUpstream

    if is_share(cfg.url):
        from updmirror.upstream.smb import SmbUpstream
        return SmbUpstream(cfg)
    root = folder_root(cfg.url)
    if root is not None:
        return FolderUpstream(root)
    return HttpUpstream(cfg)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = ["Upstream", "UpstreamConfig", "IndexResult", "UpstreamStats", "HttpUpstream",
           "FolderUpstream", "SmbUpstream", "folder_root", "open_upstream", "UpstreamError", "AuthError",
           "NotFoundError", "TooLargeError", "StalledError"]
