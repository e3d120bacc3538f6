"""Files and directories only their owner may read: the one place their modes are set and checked.

A data directory holds member keys, the operator token, vault master keys and the databases
(personal data sealed, but its metadata, balances and audit trail not).  Everything the
platform creates there is therefore owner-only: directories 0700, files 0600.  Modes are given
at creation (`os.open(..., 0o600)`, `mkdir(0o700)`), so no other user can open a file in the
instant before a chmod, and set again with `fchmod`/`chmod` because the umask can only narrow
a mode and an existing file keeps its old one when it is truncated.

Secret files (keys, the operator token, vault keys) are also refused at load when group or
others have any bit: a copy restored at 0644 must not run quietly.  `check_secret_file` is the
check every loader calls, so the rule and its message are the same for all of them.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from zhijin.chain.errors import ZhijinError

__all__ = [
    "PRIVATE_DIR_MODE",
    "PRIVATE_FILE_MODE",
    "LooseFileMode",
    "check_secret_file",
    "loose_mode",
    "make_private_dir",
    "touch_private",
    "write_private",
]

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700
_GROUP_OTHER = 0o077


class LooseFileMode(ZhijinError):
    """A secret file that group or others may read or change: the node refuses to start."""

    code = "loose_file_mode"
    http_status = 500


def loose_mode(path: Path) -> int | None:
    """The permission bits of `path` if group or others hold any, else None."""
    mode = stat.S_IMODE(path.stat().st_mode)
    return mode if mode & _GROUP_OTHER else None


def check_secret_file(path: Path, what: str) -> None:
    """Refuse a secret file (`what` names it: "key file", "operator token", ...) that is not
    owner-only."""
    mode = loose_mode(path)
    if mode is not None:
        raise LooseFileMode(
            message=f"{what} {path} has mode {mode:04o}: group or others may read it; "
            f"run `chmod 600 {path}`",
            path=str(path),
            mode=f"{mode:04o}",
        )


def make_private_dir(path: Path) -> None:
    """Create `path` and any missing parents as 0700.  An existing directory keeps its mode
    (it may be a shared parent the operator chose); `chain init` creates the data directory
    itself, and the node warns at start when it is open to others."""
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:
            continue  # created meanwhile by another process: it keeps the mode it was given
        os.chmod(directory, PRIVATE_DIR_MODE)  # the umask may have narrowed it further


def touch_private(path: Path) -> None:
    """Create an empty owner-only file if it is absent (a SQLite database before SQLite opens
    it: SQLite gives its -wal and -shm files the database file's mode).

    An existing file is never opened: closing any descriptor of a file drops every POSIX lock
    this process holds on it, and SQLite's locks on an open database are such locks."""
    make_private_dir(path.parent)
    if path.exists():
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        return  # created meanwhile, by SQLite or another process
    os.close(fd)


def write_private(path: Path, data: str | bytes, *, exclusive: bool = False) -> None:
    """Write `data` to an owner-only file through a temporary one, so a crash leaves the old
    file or the new one, never half of one.  `exclusive` refuses an existing `path`."""
    make_private_dir(path.parent)
    if exclusive and path.exists():
        raise FileExistsError(path)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)  # a leftover .tmp keeps its old mode through O_TRUNC
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if exclusive:
        # A hard link fails if `path` appeared meanwhile, where a rename would replace it.
        os.link(tmp, path)
        tmp.unlink()
    else:
        os.replace(tmp, path)
