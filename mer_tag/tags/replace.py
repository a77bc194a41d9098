"""Every file is changed the same way: copy it into its own folder, write the tags into the copy, check the
copy (our fields read back, no other tag moved, the audio is the same), then replace the original with it.

A kill at any moment leaves either the original or the finished copy, never a half-written file (and
perhaps the hidden copy, which the next run clears: `clear_leftovers`). The copy is locked while a run holds
it, so another run tells it from a killed run's. The journal is written just before the replace (`on_ready`).
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from mer_tag import _fs
from mer_tag.tags.checksum import audio_checksum
from mer_tag.tags.fields import Fields, fields_of, open_audio
from mer_tag.tags.outcome import TagError

# A temp copy: `.NAME.XXXXXXXX.mer-tag.EXT`, the 8 characters tempfile.mkstemp's (a-z, 0-9, _).
TEMP_NAME = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}\.mer-tag(?P<ext>\.[^.]*)?", re.DOTALL)
CHANGED_MEANWHILE = "the file changed while it was being tagged"  # the one line for _fs.ChangedMeanwhile
NAME_MAX = 255  # bytes in one file name (Linux, macOS, Windows' NTFS in UTF-16 units)
TEMP_EXTRA = len(".") + len(".") + 8 + len(".mer-tag")  # what a temp name adds to NAME, its extension aside


def stat_for_writing(real: Path) -> os.stat_result:
    """`real`'s stat, when it is a file mer-tag may replace; else TagError saying why not."""
    try:
        st = real.stat()
    except FileNotFoundError:
        raise TagError("missing") from None
    if not stat.S_ISREG(st.st_mode):
        raise TagError("not a regular file")
    # Replacing needs only the folder to be writable; a file marked read-only is a "no" we respect.
    if not st.st_mode & 0o222 or not os.access(real, os.W_OK):
        raise TagError("read-only file")
    if st.st_nlink > 1:
        raise TagError(f"{st.st_nlink} hard links: replacing the file would split them")
    return st


@contextmanager
def _temp_beside(real: Path, st: os.stat_result, fill: Callable[[Path], object]):
    """A hidden temp file in `real`'s folder (so os.replace is atomic), filled by `fill(tmp)` and given the
    original's owner and permissions. It is locked for as long as this run holds it, so another run's
    `clear_leftovers` can tell it from one that a killed run left."""
    try:
        prefix, suffix = f".{temp_stem(real.name)}.", f".mer-tag{real.suffix}"
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=real.parent)
    except PermissionError:
        raise TagError("folder not writable") from None
    tmp = Path(name)
    try:
        _try_lock(fd)
        fill(tmp)
        made = tmp.stat()
        if (made.st_uid, made.st_gid) != (st.st_uid, st.st_gid):
            try:
                os.chown(tmp, st.st_uid, st.st_gid)
            except PermissionError:
                raise TagError("can't keep the file's owner (not ours)") from None
        os.chmod(tmp, stat.S_IMODE(st.st_mode))
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)  # gone already once it replaced the original
        os.close(fd)


def _try_lock(fd: int) -> bool:
    """An exclusive advisory lock on an open file; False when another process holds one."""
    try:
        import fcntl
    except ImportError:  # no flock (Windows): every temp copy counts as unlocked
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def temp_stem(name: str) -> str:
    """NAME as a temp copy's name holds it: itself, or, where `.NAME.XXXXXXXX.mer-tag.EXT` would pass the
    255-byte limit (long accented or CJK titles), its first characters, `~`, a hash of the whole name and
    its extension, which `clear_leftovers` maps back to the file beside it."""
    import hashlib

    suffix = os.path.splitext(name)[1]
    if len(os.fsencode(name + suffix)) + TEMP_EXTRA <= NAME_MAX:
        return name
    mark = "~" + hashlib.blake2b(os.fsencode(name), digest_size=6).hexdigest() + suffix
    room = NAME_MAX - TEMP_EXTRA - len(os.fsencode(mark + suffix))
    head = name
    while len(os.fsencode(head)) > room:
        head = head[:-1]
    return head + mark


def _original_beside(folder: str, stem: str, siblings: list[str]) -> bool:
    """Whether the file a temp copy was made of (`stem` as `temp_stem` spells it) is still in `folder`."""
    if os.path.isfile(os.path.join(folder, stem)):
        return True
    return "~" in stem and any(temp_stem(s) == stem and os.path.isfile(os.path.join(folder, s)) for s in siblings)


def clear_leftovers(folders, dry_run: bool = False) -> list[Path]:
    """Remove the temp copies that interrupted runs of ours left in `folders` (with `dry_run`, only list them).

    A file counts as ours only when its name has our exact pattern (`.NAME.XXXXXXXX.mer-tag.EXT`, EXT
    NAME's own), it is a regular file, NAME is still beside it (so the copy is never the last one left),
    and no running mer-tag holds its lock (a run tagging that folder right now).
    """
    cleared = []
    for folder in sorted({str(f) for f in folders}):
        try:
            with os.scandir(folder) as entries:
                siblings = [e.name for e in entries]
            names = [n for n in siblings if n.startswith(".") and ".mer-tag" in n]
        except OSError:
            continue  # gone or unreadable: nothing of ours we could clear
        for name in names:
            match = TEMP_NAME.fullmatch(name)
            if not match or (match["ext"] or "") != Path(match["name"]).suffix:
                continue
            if _original_beside(folder, match["name"], siblings) and _remove_unlocked(Path(folder, name), dry_run):
                cleared.append(Path(folder, name))
    return cleared


def _remove_unlocked(path: Path, dry_run: bool) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False  # a symlink, or gone
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode) or not _try_lock(fd):
            return False
        if not dry_run:
            path.unlink()
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _verify(before: Fields, after: Fields, changes: dict) -> None:
    """The copy holds exactly `changes`, and every other field as it was."""
    if after.kind != before.kind:
        raise TagError(f"tag format changed from {before.kind} to {after.kind}")
    for key, value in changes.items():
        got = after.get(key)
        if got is None or value is None:
            wrong = (got is None) != (value is None)
        else:
            wrong = any(got.get(k) != v for k, v in value.items())
        if wrong:
            raise TagError(f"{key} reads back as {got!r}, not {value!r}")
    ours = {k.upper() for k in changes}
    old, new = before.snapshot(), after.snapshot()
    moved = sorted(k for k in old.keys() | new.keys() if k.upper() not in ours and old.get(k) != new.get(k))
    if moved:
        raise TagError(f"other tags would change ({', '.join(moved)})")


def rewrite(
    real: Path,
    st: os.stat_result,
    before: Fields,
    changes: dict,
    *,
    keep_mtime: bool,
    drop_new_tag: bool = False,
    undo_bytes: bool = False,
    on_ready: Callable[[Fields, dict, dict | None], None] = lambda after, audio, undo: None,
):
    """Apply `changes` to a copy of `real`, check it, and swap it in. `on_ready(fields, audio checksum,
    undo)` runs just before the swap (the journal); `undo`, with `undo_bytes`, is what rebuilds `real`
    byte for byte from the copy. A failure anywhere leaves `real` untouched."""
    import shutil

    audio = audio_checksum(real, before.audio)
    with _temp_beside(real, st, lambda tmp: shutil.copyfile(real, tmp)) as tmp:
        copy = open_audio(tmp)
        fields = fields_of(copy)
        for key, value in changes.items():
            fields.set(key, value)
        if not (drop_new_tag and fields.drop_tag()):
            fields.save()
        after = fields_of(open_audio(tmp))
        _verify(before, after, changes)
        if audio_checksum(tmp, before.audio) != audio:
            raise TagError("the audio changed in the copy; file left as it was")
        undo = _undo_recipe(real, tmp) if undo_bytes else None
        _swap(real, st, tmp, keep_mtime, lambda: on_ready(after, audio, undo))


def _undo_recipe(real: Path, tmp: Path) -> dict:
    """{"sha256" of the original, "tagged_sha256" of the copy, and the delta recipe}, checked to rebuild it."""
    from mer_tag.tags.delta import diff, mapped, rebuilds, sha256

    with mapped(real) as original, mapped(tmp) as tagged:
        undo = {"sha256": sha256(original), "tagged_sha256": sha256(tagged), **diff(original, tagged)}
        if not rebuilds(undo, tagged, original):
            raise TagError("could not record how to undo this change byte for byte; file left as it was")
    return undo


def _swap(real: Path, st: os.stat_result, tmp: Path, keep_mtime: bool, on_ready: Callable[[], None]) -> None:
    """The finished temp copy replaces `real` durably (_fs.commit), unless `real` changed since `st` (another
    program wrote it). That is asked before `on_ready` too, so the journal gets no record of a file already
    known to stay as it is; _fs.commit asks again just before the rename."""
    if keep_mtime:
        os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
    if _fs.changed_since(real, st):
        raise TagError(CHANGED_MEANWHILE)
    on_ready()
    try:
        _fs.commit(tmp, real, keep=st)
    except _fs.ChangedMeanwhile:
        raise TagError(CHANGED_MEANWHILE) from None


def restore_bytes(real: Path, st: os.stat_result, undo: dict, tagged, keep_mtime: bool) -> None:
    """Write the original that `undo` rebuilds from `tagged` (the file's bytes now) and swap it in."""
    from mer_tag.tags.delta import rebuild

    def fill(tmp: Path) -> None:
        digest = hashlib.sha256()
        with open(tmp, "wb") as out:

            def write(block) -> None:
                digest.update(block)
                out.write(block)

            rebuild(undo, tagged, write)
        if digest.hexdigest() != undo["sha256"]:
            raise TagError("the journal does not rebuild the original; file left as it was")

    with _temp_beside(real, st, fill) as tmp:
        _swap(real, st, tmp, keep_mtime, lambda: None)
