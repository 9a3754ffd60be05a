"""The simulated vendor: a signed synthetic repository, its releases, and a
server with fault injection, for tests, benchmarks and the demo.

    generate.py, publish.py   a repository and its releases; catalog.py, blobs.py
    keys.py, pgpwriter.py, nupwriter.py, rarwriter.py   signing and writing vendor files
    server.py, faults.py      the vendor's HTTP server and its injected faults
"""

from updmirror.errors import UpdmirrorError


class VendorError(UpdmirrorError):
    """The simulated vendor cannot do what was asked (bad root, bad option)."""


__all__ = ["VendorError", "blobs", "catalog", "faults", "generate", "keys", "nupwriter", "pgpwriter",
           "publish", "rarwriter", "server"]
