"""Directories and files only this service's user may change: the batch data directory, the metrics directory, the
callback key.

A directory someone else planted — a symbolic link to another directory, one another user owns, one others may
write to — would let them choose what the service empties at start, read, or trusts as its key. So a directory is
accepted only when it is a real directory (``lstat``: never followed through a symbolic link), owned by this
process's user, and writable by no other user (nor by a group other than the process's own); one that does not
exist is created with mode 0700 (and so are its missing parents, never inside a symbolic link). Only the directory
itself and the parents created here are checked: an existing parent is the operator's (``/tmp``'s sticky bit already
stops others renaming what is in it) — except the per-user base of the defaults, which the configuration checks too.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

DIRECTORY_MODE = 0o700
FILE_MODE = 0o600


class NotPrivate(ValueError):
    """A path this service would write to or trust is not its own; the message says what is wrong with it."""


def _writable_by_others(status: os.stat_result, bits: int) -> bool:
    """``bits`` (a mode's group and other bits) let someone else in: other users always, a group unless it is this
    process's own. Kubernetes makes a volume's files group-writable by the pod's fsGroup, which only pods running as
    this service (same user and group) hold."""
    others = bits & 0o007
    group = bits & 0o070 if status.st_gid != os.getegid() else 0
    return bool(status.st_mode & (others | group))


def _check_directory(path: Path) -> None:
    try:
        status = os.lstat(path)
    except FileNotFoundError:
        raise NotPrivate(f"{path} vanished while it was being created") from None
    if stat.S_ISLNK(status.st_mode):
        raise NotPrivate(f"{path} is a symbolic link (to {os.readlink(path)}), not a directory of this service's")
    if not stat.S_ISDIR(status.st_mode):
        raise NotPrivate(f"{path} is not a directory")
    _check_owner_and_mode(path, status, 0o022, "writable by others")


def _check_owner_and_mode(path: Path, status: os.stat_result, bits: int, meaning: str) -> None:
    if status.st_uid != os.geteuid():
        raise NotPrivate(f"{path} belongs to uid {status.st_uid}, not to this service's user (uid {os.geteuid()})")
    if _writable_by_others(status, bits):
        mode = stat.S_IMODE(status.st_mode)
        raise NotPrivate(f"{path} is {meaning} (mode {mode:04o}, group {status.st_gid}, not this service's)")


def ensure_directory(path: str | Path) -> Path:
    """``path`` as a private directory: created 0700 when missing, else checked; raises ``NotPrivate``."""
    path = Path(path)
    missing = []
    probe = path
    while not os.path.lexists(probe) and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    if missing and os.path.islink(probe):  # what would be created would land wherever the link points
        raise NotPrivate(f"{probe} is a symbolic link (to {os.readlink(probe)}), not a directory of this service's")
    for directory in reversed(missing):
        # Made meanwhile — by another worker starting, or by someone else: the check below tells which.
        with contextlib.suppress(FileExistsError):
            os.mkdir(directory, DIRECTORY_MODE)
    for directory in dict.fromkeys((path, *missing)):
        _check_directory(directory)
    return path


def open_private_file(path: str | Path, flags: int = os.O_RDONLY) -> int:
    """A descriptor for a regular file this user owns and nobody else may read or write (not followed through a
    symbolic link); raises ``NotPrivate`` (or ``FileNotFoundError``)."""
    try:
        descriptor = os.open(path, flags | os.O_NOFOLLOW)
    except OSError as error:
        if os.path.islink(path):
            raise NotPrivate(f"{path} is a symbolic link, not a file of this service's") from error
        raise
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise NotPrivate(f"{path} is not a regular file")
        _check_owner_and_mode(Path(path), status, 0o077, "readable or writable by others")
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


def open_no_follow(path: str | Path) -> int:
    """A descriptor to read ``path``; a symbolic link in its place is refused (``OSError`` ELOOP), not followed."""
    return os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
