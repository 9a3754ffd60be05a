"""The simulated vendor: a signed synthetic repository, its releases, and a
server with fault injection, for tests, benchmarks and the demo."""

from updmirror.errors import UpdmirrorError


class VendorError(UpdmirrorError):
    """The simulated vendor cannot do what was asked (bad root, bad option)."""
