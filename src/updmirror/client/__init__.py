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
from ._install import Installed
from ._plan import Held, Plan, modules_for, plan_update
from ._sources import Source
from ._update import Client, Endpoint, Progress, UpdateResult


def installed(dest) -> Installed:
    """What the folder `dest` holds now (an empty Installed if nothing yet)."""
    from ._install import Destination
    return Destination(dest).installed()


__all__ = [
    "Client", "Endpoint", "Source", "UpdateResult", "Progress",
    "installed", "Installed", "Held",
    "plan_update", "modules_for", "Plan", "user_agent",
    "ClientError", "UpdateFailed", "DestinationError", "SourceFailure", "CAUSES",
]
