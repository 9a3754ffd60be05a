"""The two places a shared folder can be: a local folder (that Samba shares),
or a remote share written over SMB. Both offer the same few operations, and
every file arrives the same way: written under a temporary name beside its
final one, then renamed over it, so a reader sees the old file or the new
one, never part of one.

Names are folder-relative and "/"-separated; they come from the publisher's
plan (normalised repository paths), and are checked again here.
"""

from __future__ import annotations

import errno
import os
import posixpath
import shutil
from pathlib import Path
from typing import BinaryIO, Protocol

from updmirror.errors import FolderError
from updmirror.files import atomic_file, fsync_path
from updmirror.unc import ShareLocation, parse_share

from .layout import RESERVED_PREFIX

FILE_MODE = 0o644
DIR_MODE = 0o755
COPY_CHUNK = 1 << 20


def temporary_name(rel: str) -> str:
    """Where `rel` is written before the rename that makes it visible."""
    folder, name = posixpath.split(rel)
    return posixpath.join(folder, f"{RESERVED_PREFIX}-{name}.part")


def _check(rel: str) -> str:
    parts = rel.split("/")
    if not rel or rel.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\\" in rel:
        raise FolderError(f"refusing to write {rel!r} in the shared folder: not a plain relative name")
    return rel


class Folder(Protocol):
    """What the publisher needs of a folder."""

    def open(self) -> None: ...
    def close(self) -> None: ...
    def size(self, rel: str) -> int | None: ...
    def read(self, rel: str, limit: int) -> bytes | None: ...
    def makedirs(self, rel_dir: str) -> list[str]: ...
    def put_file(self, rel: str, source: Path) -> None: ...
    def put_bytes(self, rel: str, data: bytes) -> None: ...
    def remove(self, rel: str) -> None: ...
    def rmdir(self, rel_dir: str) -> bool: ...
    def flush(self) -> None: ...


class LocalFolder:
    """A folder on this machine. Files 0644 and folders 0755, whatever the
    umask, so that the share's read-only account can read them."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._touched: set[Path] = set()

    def __str__(self) -> str:
        return str(self.root)

    def _path(self, rel: str) -> Path:
        return self.root / _check(rel)

    def _fail(self, what: str, exc: OSError) -> FolderError:
        return FolderError(f"{what}: {exc.strerror or exc} (shared folder {self.root})")

    def open(self) -> None:
        try:
            if not self.root.exists():
                self.root.mkdir(mode=DIR_MODE)
                os.chmod(self.root, DIR_MODE)
            if not self.root.is_dir():
                raise FolderError(f"{self.root}: [folder] path is not a folder")
        except FileNotFoundError:
            raise FolderError(f"{self.root}: its parent folder does not exist; create it, or set "
                              "[folder] path to an existing folder") from None
        except OSError as exc:
            raise self._fail(f"cannot create {self.root}", exc) from None
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise FolderError(f"{self.root}: not writable by this user (uid {os.getuid()}); "
                              "the mirror's user must own the shared folder")

    def close(self) -> None:
        self._touched.clear()

    def size(self, rel: str) -> int | None:
        path = self._path(rel)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise self._fail(str(path), exc) from None
        if not path.is_file():
            raise FolderError(f"{path}: is a folder where the mirror must write a file; move it away")
        return st.st_size

    def read(self, rel: str, limit: int) -> bytes | None:
        path = self._path(rel)
        try:
            with open(path, "rb") as f:
                data = f.read(limit + 1)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise self._fail(f"cannot read {path}", exc) from None
        if len(data) > limit:
            raise FolderError(f"{path}: larger than {limit} bytes; not a file the mirror wrote")
        return data

    def makedirs(self, rel_dir: str) -> list[str]:
        created = []
        current = ""
        for part in _check(rel_dir).split("/"):
            current = posixpath.join(current, part)
            path = self.root / current
            try:
                path.mkdir(mode=DIR_MODE)
            except FileExistsError:
                if not path.is_dir():
                    raise FolderError(f"{path}: a file is where the mirror needs a folder; "
                                      "move it away") from None
                continue
            except OSError as exc:
                raise self._fail(f"cannot create {path}", exc) from None
            os.chmod(path, DIR_MODE)
            self._touched.add(path.parent)
            created.append(current)
        return created

    def _install(self, rel: str, write) -> None:
        final = self._path(rel)
        try:
            # The folders are flushed together, in flush(), not after each file.
            with atomic_file(final, temporary=self.root / temporary_name(rel), mode=FILE_MODE,
                             sync_folder=False) as f:
                write(f)
        except OSError as exc:
            raise self._fail(f"cannot write {final}", exc) from None
        self._touched.add(final.parent)

    def put_file(self, rel: str, source: Path) -> None:
        def copy(out: BinaryIO) -> None:
            with open(source, "rb") as src:
                shutil.copyfileobj(src, out, COPY_CHUNK)
        self._install(rel, copy)

    def put_bytes(self, rel: str, data: bytes) -> None:
        self._install(rel, lambda out: out.write(data))

    def remove(self, rel: str) -> None:
        for name in (rel, temporary_name(rel)):
            try:
                (self.root / _check(name)).unlink()
            except (FileNotFoundError, NotADirectoryError):
                pass
            except OSError as exc:
                raise self._fail(f"cannot remove {self.root / name}", exc) from None

    def rmdir(self, rel_dir: str) -> bool:
        try:
            (self.root / _check(rel_dir)).rmdir()
        except FileNotFoundError:
            return True
        except OSError:
            return False   # not empty: something not ours is in it, so it stays
        return True

    def flush(self) -> None:
        """Put the renames so far on disk, before the next step depends on them."""
        for folder in sorted(self._touched):
            fsync_path(folder)
        self._touched.clear()


class SmbFolder:
    """A folder on a remote share, written over SMB 2/3 with smbprotocol.

    File modes there are the server's (Samba's `create mask`), not ours.
    """

    def __init__(self, unc: str, account: str, password: str, port: int = 445,
                 timeout: float = 30.0):
        self.unc: ShareLocation = parse_share(unc, port)
        self.account, self._password = account, password
        self.port, self.timeout = port, timeout
        self._cache: dict = {}

    def __str__(self) -> str:
        return self.unc.unc

    @property
    def _kw(self) -> dict:
        return {"port": self.port, "connection_cache": self._cache}

    def _path(self, rel: str) -> str:
        return self.unc.join(_check(rel)) if rel else self.unc.unc

    def _fail(self, what: str, exc: Exception) -> FolderError:
        from smbprotocol.exceptions import LogonFailure, SMBAuthenticationError, SMBOSError

        if isinstance(exc, SMBOSError):
            return FolderError(f"{what}: {exc.strerror} (on {self.unc.host}:{self.port})")
        if isinstance(exc, (LogonFailure, SMBAuthenticationError)):
            return FolderError(f"{self.unc}: the server refused the account {self.account} "
                               "(wrong user name or password?); check [folder] username and password_file")
        if isinstance(exc, (OSError, ValueError)):
            # Socket errors, and smbprotocol's "Failed to connect" (a ValueError).
            return FolderError(f"{self.unc}: cannot reach {self.unc.host}:{self.port} "
                               f"({getattr(exc, 'strerror', None) or exc})")
        # smbprotocol's other errors carry the NT status; never a credential.
        return FolderError(f"{what}: {type(exc).__name__}: {exc}")

    def open(self) -> None:
        import smbclient

        try:
            smbclient.register_session(self.unc.host, username=self.account, password=self._password,
                                       port=self.port, connection_timeout=self.timeout,
                                       connection_cache=self._cache)
            smbclient.makedirs(self.unc.unc, exist_ok=True, **self._kw)
        except Exception as exc:
            self.close()
            raise self._fail(f"cannot open {self.unc}", exc) from None

    def close(self) -> None:
        import smbclient

        try:
            smbclient.reset_connection_cache(connection_cache=self._cache)
        except Exception:  # noqa: BLE001 - closing a broken connection: nothing left to do
            pass

    def size(self, rel: str) -> int | None:
        import smbclient

        path = self._path(rel)
        try:
            st = smbclient.stat(path, **self._kw)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                return None
            raise self._fail(path, exc) from None
        except Exception as exc:
            raise self._fail(path, exc) from None
        if (st.st_mode & 0o170000) == 0o040000:
            raise FolderError(f"{path}: is a folder where the mirror must write a file; move it away")
        return st.st_size

    def read(self, rel: str, limit: int) -> bytes | None:
        import smbclient

        path = self._path(rel)
        try:
            with smbclient.open_file(path, mode="rb", **self._kw) as f:
                data = f.read(limit + 1)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                return None
            raise self._fail(f"cannot read {path}", exc) from None
        except Exception as exc:
            raise self._fail(f"cannot read {path}", exc) from None
        if len(data) > limit:
            raise FolderError(f"{path}: larger than {limit} bytes; not a file the mirror wrote")
        return data

    def makedirs(self, rel_dir: str) -> list[str]:
        import smbclient

        created = []
        current = ""
        for part in _check(rel_dir).split("/"):
            current = posixpath.join(current, part)
            path = self._path(current)
            try:
                smbclient.mkdir(path, **self._kw)
            except OSError as exc:
                if exc.errno != errno.EEXIST:
                    raise self._fail(f"cannot create {path}", exc) from None
                if self.size_or_dir(current) != "dir":
                    raise FolderError(f"{path}: a file is where the mirror needs a folder; "
                                      "move it away") from None
                continue
            except Exception as exc:
                raise self._fail(f"cannot create {path}", exc) from None
            created.append(current)
        return created

    def size_or_dir(self, rel: str) -> str | None:
        import smbclient

        try:
            st = smbclient.stat(self._path(rel), **self._kw)
        except OSError:
            return None
        return "dir" if (st.st_mode & 0o170000) == 0o040000 else "file"

    def _install(self, rel: str, write) -> None:
        import smbclient

        final, tmp = self._path(rel), self._path(temporary_name(rel))
        try:
            with smbclient.open_file(tmp, mode="wb", **self._kw) as out:
                write(out)
            self._rename_over(tmp, rel)
        except Exception as exc:
            try:
                smbclient.remove(tmp, **self._kw)
            except Exception:  # noqa: BLE001 - the first error is the one to report
                pass
            raise self._fail(f"cannot write {final}", exc) from None

    def _rename_over(self, tmp: str, rel: str) -> None:
        """Rename `tmp` over `rel` in one SMB2 SET_INFO (FileRenameInformation,
        ReplaceIfExists). Not smbclient.replace(): it first opens the target
        for FILE_EXECUTE, which Samba refuses on a 0644 file, so it cannot
        replace an index. The I/O layer used here is smbclient's own
        (smbprotocol is pinned; the SMB tests would catch a change)."""
        from smbclient._io import SMBFileTransaction, SMBRawIO, set_info
        from smbprotocol.file_info import FileRenameInformation
        from smbprotocol.open import CreateOptions, FilePipePrinterAccessMask

        with SMBRawIO(tmp, mode="r", share_access="rwd", desired_access=FilePipePrinterAccessMask.DELETE,
                      create_options=CreateOptions.FILE_OPEN_REPARSE_POINT, **self._kw) as raw:
            with SMBFileTransaction(raw) as transaction:
                info = FileRenameInformation()
                info["replace_if_exists"] = True
                info["file_name"] = "\\".join((*self.unc.folders, *_check(rel).split("/")))
                set_info(transaction, info)

    def put_file(self, rel: str, source: Path) -> None:
        def copy(out) -> None:
            with open(source, "rb") as src:
                shutil.copyfileobj(src, out, COPY_CHUNK)
        self._install(rel, copy)

    def put_bytes(self, rel: str, data: bytes) -> None:
        self._install(rel, lambda out: out.write(data))

    def remove(self, rel: str) -> None:
        import smbclient

        for name in (rel, temporary_name(rel)):
            path = self._path(name)
            try:
                smbclient.remove(path, **self._kw)
            except OSError as exc:
                if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
                    raise self._fail(f"cannot remove {path}", exc) from None
            except Exception as exc:
                raise self._fail(f"cannot remove {path}", exc) from None

    def rmdir(self, rel_dir: str) -> bool:
        import smbclient

        try:
            smbclient.rmdir(self._path(rel_dir), **self._kw)
        except OSError as exc:
            return exc.errno in (errno.ENOENT,)
        except Exception:  # noqa: BLE001 - not empty or not allowed: the folder stays
            return False
        return True

    def flush(self) -> None:
        """Each SMB close and rename is done on the server when it answers."""
