"""One exception hierarchy for everything a user can meet.

Every message says what happened, to which file or URL, and what to do.
No message may contain a credential: callers pass URLs through
:func:`updmirror.redact.url` before putting them in a message.
"""


class UpdmirrorError(Exception):
    """Base of every error the command line reports without a traceback."""

    exit_code = 1


class ConfigError(UpdmirrorError):
    """The configuration file is missing, unreadable or invalid."""

    exit_code = 2


class FormatError(UpdmirrorError):
    """An update.ver or .nup file does not have the expected format."""


class UnsafePathError(FormatError):
    """A `file=` entry or a request path would leave the repository."""


class SignatureError(FormatError):
    """A .nup file's signature or checksum does not verify."""


class MissingToolError(UpdmirrorError):
    """A helper program the machine lacks is needed (e.g. a RAR extractor)."""


class UpstreamError(UpdmirrorError):
    """A download from the upstream failed after retries."""


class LockedError(UpdmirrorError):
    """Another process holds the store's lock."""


class FolderError(UpdmirrorError):
    """The shared folder (local or over SMB) could not be brought up to date."""


class StoreError(UpdmirrorError):
    """A write to the store failed: a full disk, an I/O error."""
