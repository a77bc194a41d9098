"""Atomic writes: a file or a folder is there whole, or as it was before; never half written.

The new content goes to a temp name beside the target (the same filesystem, so the rename is atomic), is
fsynced, then renamed over the target, and the folder holding it is fsynced so the rename itself survives
a power cut. A crash leaves the old target, and at worst a temp name starting with '.' that no reader
looks at. A folder replaces a folder in one step too (`rename(2)` cannot, so the two are exchanged where
the system can, then the old one is deleted): a reader finds the old folder or the new one, never none.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mer_tag.errors import MerTagError

RENAME_EXCHANGE = 2  # Linux <linux/fs.h>: renameat2 swaps the two paths
RENAME_SWAP = 2  # macOS <stdio.h>: renamex_np swaps the two paths
AT_FDCWD = -100  # Linux <fcntl.h>: paths relative to the working folder


class ChangedMeanwhile(MerTagError):
    """The file to replace changed after it was read (another program wrote it): it is left as it is."""


@contextmanager
def atomic_file(
    target: str | os.PathLike,
    suffix: str = "",
    staging: str | os.PathLike | None = None,
    keep: os.stat_result | None = None,
) -> Iterator[Path]:
    """Yield a temp path to write the new `target` to; when the block ends, it replaces `target` (fsynced).

    `suffix` ends the temp name (np.savez wants '.npz'); `staging` is the folder the temp file is made in
    (default: the target's own, which must be on the same filesystem), for targets in a folder whose every
    file is read (a Parquet dataset). `keep`, the target's stat when it was read: the new file keeps its
    permissions, and ChangedMeanwhile is raised instead of replacing a target that changed since (an edit
    of a file someone else may be writing). An exception in the block removes the temp file and keeps
    `target`.
    """
    target = Path(target)
    folder = Path(staging) if staging is not None else target.parent
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{target.name}.{os.getpid()}.tmp{suffix}"
    try:
        yield tmp
        if keep is None:
            _make_readable(tmp)
        else:
            os.chmod(tmp, keep.st_mode & 0o7777)
        commit(tmp, target, keep)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(target: str | os.PathLike, data: bytes) -> Path:
    with atomic_file(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def write_text(target: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """`text` as the whole of `target`, newlines written as given ('\\n' everywhere)."""
    return write_bytes(target, text.encode(encoding))


@contextmanager
def atomic_folder(target: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temp folder beside `target` to fill; when the block ends, it becomes `target` (every
    file in it fsynced) in one step, replacing a folder or a file that was there; the old one is deleted."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        _make_readable(tmp, folder=True)
        for file in tmp.rglob("*"):
            if file.is_file():
                fsync(file)
        fsync_folder(tmp)
        if os.path.lexists(target):
            _exchange(tmp, target)  # tmp now holds the old target
        else:
            os.replace(tmp, target)
        fsync_folder(target.parent)
    finally:
        _remove(tmp)


def commit(tmp: str | os.PathLike, target: str | os.PathLike, keep: os.stat_result | None = None) -> None:
    """A file written in full at `tmp` (beside `target`) replaces `target`: fsync, rename, fsync the folder.
    With `keep` (the target's stat when it was read), ChangedMeanwhile instead when the target changed since.
    For writers that make their own temp file too (tags keep the owner of the file they replace)."""
    fsync(tmp)
    if keep is not None and changed_since(target, keep):
        raise ChangedMeanwhile(f"{target} changed while mer-tag was writing it; it is left as it is")
    os.replace(tmp, target)
    fsync_folder(Path(target).parent)


def changed_since(path: str | os.PathLike, before: os.stat_result) -> bool:
    """Whether `path` is no longer the file `before` described (another inode, size or mtime), or is gone."""
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return True
    return (now.st_ino, now.st_size, now.st_mtime_ns) != (before.st_ino, before.st_size, before.st_mtime_ns)


def fsync(path: str | os.PathLike) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_folder(folder: str | os.PathLike) -> None:
    """Make the renames in `folder` durable; a no-op where folders cannot be opened or fsynced."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems can't fsync a folder; the rename is still atomic
    finally:
        os.close(fd)


def _exchange(new: Path, old: Path) -> None:
    """Swap `new` and `old` in one step (Linux renameat2, macOS renamex_np). Elsewhere, or on a filesystem
    that cannot, `old` is moved aside first: a reader may then, for that instant, find no `old`."""
    if _swap(new, old):
        return
    aside = old.with_name(f".{old.name}.{os.getpid()}.old")
    _remove(aside)
    os.replace(old, aside)
    os.replace(new, old)
    os.replace(aside, new)  # `new` now names the old one, for the caller to delete


def _swap(a: Path, b: Path) -> bool:
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        if sys.platform.startswith("linux"):
            done = libc.renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0
        elif sys.platform == "darwin":
            done = libc.renamex_np(os.fsencode(a), os.fsencode(b), RENAME_SWAP) == 0
        else:
            return False
    except (OSError, AttributeError):  # a libc without the call (glibc before 2.28)
        return False
    return done


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _make_readable(path: Path, folder: bool = False) -> None:
    """Temp files (mkstemp, mkdtemp, safetensors) are private; a result or a model is for whoever reads it:
    the mode a plain new file or folder gets under the umask."""
    umask = os.umask(0)
    os.umask(umask)
    path.chmod((0o777 if folder else 0o666) & ~umask)
    if folder:
        for child in path.rglob("*"):
            child.chmod((0o777 if child.is_dir() else 0o666) & ~umask)
