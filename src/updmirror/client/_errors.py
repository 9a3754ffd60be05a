"""What an update can fail with. Every message names the source or the folder and what to do."""

from __future__ import annotations

from dataclasses import dataclass

from updmirror.errors import UpdmirrorError

#: Why a source was given up, in the order a user would check them.
CAUSES = {
    "unavailable": "did not deliver the index (down, too slow, or cut short)",
    "credentials": "refused the credentials",
    "not-found": "has no index for this tree",
    "broken-index": "served an index that is not a usable update.ver",
    "older-index": "served an index older than what is installed",
    "download": "failed on a module file",
}


@dataclass(frozen=True)
class SourceFailure:
    """One source given up during an update, and why."""

    source: str       # as the user wrote it, never with credentials
    cause: str        # a key of CAUSES
    message: str      # one line: what happened, naming the source's URL or path


class ClientError(UpdmirrorError):
    """Base of the client's errors."""


class UpdateFailed(ClientError):
    """No source could bring the folder up to date; it is as it was."""

    exit_code = 1

    def __init__(self, dest: str, failures: list[SourceFailure]):
        self.dest = dest
        self.failures = list(failures)
        lines = [f"no source could update {dest}; it is unchanged."]
        lines += [f"  {f.message}" for f in failures]
        lines.append(_advice(failures))
        super().__init__("\n".join(lines))


class DestinationError(ClientError):
    """The folder to install into cannot be used (not writable, or another update runs on it)."""

    exit_code = 3


def _advice(failures: list[SourceFailure]) -> str:
    causes = {f.cause for f in failures}
    if causes == {"credentials"}:
        return "Check --user and --password-file: every source refused them."
    if causes <= {"unavailable"}:
        return "Check that the sources are up and reachable from here, then try again."
    if "older-index" in causes:
        return ("A source older than the installed version is never installed; wait for the "
                "mirrors to sync, or check that they still sync.")
    return "Check each source's message above; the next update retries every source."
