"""client room: the reference update client, an endpoint that updates a folder from mirrors.

    from updmirror.client import Client, Endpoint, Source

    async with Client() as client:
        result = await client.update("/var/lib/av", [Source.parse("http://mirror:2221"),
                                                     Source.parse(r"\\\\mirror\\share", user=..., password=...)],
                                     Endpoint("ep11", "x64", pinned=(FINGERPRINT,)))

The public surface is what this module exports; the `_`-modules behind it
may change freely. `updmirror client update` is the same on the command line.
"""

from updmirror.eset.trees import user_agent

from ._errors import CAUSES, ClientError, DestinationError, SourceFailure, UpdateFailed
from ._install import Destination, Installed
from ._plan import FULL_BASE, MAX_DELTAS, Held, Plan, module_key, modules_for, plan_update
from ._sources import Source
from ._update import Client, Endpoint, Progress, UpdateResult


def installed(dest) -> Installed:
    """What the folder `dest` holds now (an empty Installed if nothing yet)."""
    return Destination(dest).installed()


__all__ = [
    "Client", "Endpoint", "Source", "UpdateResult", "Progress",
    "installed", "Installed", "Held",
    "plan_update", "modules_for", "Plan", "user_agent",
    # The destination folder and the delta-chain rules, for tools and tests.
    "Destination", "module_key", "FULL_BASE", "MAX_DELTAS",
    "ClientError", "UpdateFailed", "DestinationError", "SourceFailure", "CAUSES",
]
