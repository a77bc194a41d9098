"""What `untag` needs to put a file back byte for byte: the original, written as a recipe over the tagged file.

A tag edit changes a few small regions of a file (the tag block, a size field, Ogg page numbers and
checksums, MP4 chunk offsets) and leaves everything else as it was, perhaps moved. So the original is
mostly runs of bytes that the tagged file still holds somewhere. `diff` writes it as copy ops (an offset
and a length in the tagged file) and literal ops (bytes the tagged file lacks), in the spirit of rsync:
runs are found where the last one left off, else through an index of the tagged file's blocks by content.
The audio and an unchanged cover cost one op each; only the bytes the edit replaced are kept.

The recipe is plain JSON: {"ops": [[offset, length] for a copy, length for literal bytes, ...],
"literal": base64 of the zlib-compressed literal bytes, in order}.
"""

from __future__ import annotations

import base64
import hashlib
import mmap
import zlib
from contextlib import contextmanager
from pathlib import Path

from mer_tag.tags.outcome import TagError

BLOCK = 64  # bytes: the tagged file is indexed in blocks of this size, so a shared run of 2 × 64 bytes is found
MAX_BLOCKS = 1 << 16  # blocks indexed at most (an int→int dict of about 5 MB); a bigger region indexes coarser
MIN_RUN = 16  # bytes: a shorter match where the last run left off is not worth an op
CHUNK = 1 << 16  # bytes compared at a time when a run is extended


@contextmanager
def mapped(path: str | Path):
    """The file's bytes without reading them all in (an empty file has nothing to map)."""
    with open(path, "rb") as f:
        if f.seek(0, 2) == 0:
            yield b""
            return
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as view:
            yield view


def sha256(data) -> str:
    digest = hashlib.sha256()
    view = memoryview(data)
    for start in range(0, len(view), 1 << 20):
        digest.update(view[start : start + (1 << 20)])
    return digest.hexdigest()


def diff(original, tagged) -> dict:
    """A recipe that rebuilds `original` from `tagged` (both bytes-like, e.g. `mapped` files)."""
    ops, literal = _Ops(), bytearray()
    head = _run(original, 0, tagged, 0, min(len(original), len(tagged)))
    tail = _run(original, len(original), tagged, len(tagged), min(len(original), len(tagged)) - head, backward=True)
    ops.copy(0, head)
    _middle(original, head, len(original) - tail, tagged, head, len(tagged) - tail, ops, literal)
    ops.copy(len(tagged) - tail, tail)
    ops.flush()
    return {"ops": ops.list, "literal": base64.b64encode(zlib.compress(bytes(literal), 9)).decode("ascii")}


def rebuild(recipe: dict, tagged, write) -> None:
    """Feed the original's bytes, in order, to `write`. TagError for a recipe that does not fit `tagged`."""
    literal = memoryview(zlib.decompress(base64.b64decode(recipe["literal"])))
    pos = 0
    for op in recipe["ops"]:
        if isinstance(op, int):
            write(literal[pos : pos + op])
            pos += op
            continue
        offset, length = op
        if offset < 0 or offset + length > len(tagged):
            raise TagError("the recipe reads past the end of the file")
        for start in range(offset, offset + length, 1 << 20):
            write(tagged[start : min(start + (1 << 20), offset + length)])
    if pos != len(literal):
        raise TagError("the recipe's literal bytes do not add up")


def rebuilds(recipe: dict, tagged, original) -> bool:
    """Whether `recipe` over `tagged` gives back `original`, every byte (compared, not hashed: faster)."""
    pos, same = 0, True

    def compare(block) -> None:
        nonlocal pos, same
        same = same and original[pos : pos + len(block)] == block
        pos += len(block)

    rebuild(recipe, tagged, compare)
    return same and pos == len(original)


class _Ops:
    """Copy ops, merged when one continues the last; literal bytes gathered into one op between copies."""

    def __init__(self):
        self.list: list = []
        self.pending = 0  # literal bytes not yet written as an op

    def copy(self, offset: int, length: int) -> None:
        if length <= 0:
            return
        if self.pending:
            self.list.append(self.pending)
            self.pending = 0
        elif self.list and not isinstance(self.list[-1], int) and sum(self.list[-1]) == offset:
            self.list[-1][1] += length
            return
        self.list.append([offset, length])

    def flush(self) -> None:
        if self.pending:
            self.list.append(self.pending)
            self.pending = 0


def _middle(o, lo: int, hi: int, t, t_lo: int, t_hi: int, ops: _Ops, literal: bytearray) -> None:
    """Ops for o[lo:hi], copying from anywhere in `t`, its blocks in t[t_lo:t_hi] indexed on first need."""
    index, block = None, max(BLOCK, -(-(t_hi - t_lo) // MAX_BLOCKS))
    shift = t_lo - lo  # where in `t` the bytes at `i` would be if they had moved with the last run
    i = lo
    while i < hi:
        j = i + shift
        if 0 <= j <= len(t) - MIN_RUN and i + MIN_RUN <= hi and o[i : i + MIN_RUN] == t[j : j + MIN_RUN]:
            i = _take(o, i, hi, t, j, ops, literal)
            continue
        if i + block <= hi and (index is not None or ops.pending >= BLOCK):  # a short gap: a size field
            if index is None:
                index = {hash(t[k : k + block]): k for k in range(t_hi - block, t_lo - 1, -block)}
            k = index.get(hash(o[i : i + block]))
            if k is not None and o[i : i + block] == t[k : k + block]:
                shift = k - i
                i = _take(o, i, hi, t, k, ops, literal)
                continue
        literal.append(o[i])
        ops.pending += 1
        i += 1


def _take(o, i: int, hi: int, t, j: int, ops: _Ops, literal: bytearray) -> int:
    """Copy the run of o[i:] found at t[j:], first reaching back over literal bytes it also covers."""
    back = _run(o, i, t, j, min(ops.pending, j), backward=True)
    if back:
        del literal[len(literal) - back :]
        ops.pending -= back
    length = back + _run(o, i, t, j, min(hi - i, len(t) - j))
    ops.copy(j - back, length)
    return i - back + length


def _run(a, i: int, b, j: int, limit: int, backward: bool = False) -> int:
    """How many bytes a[i:] and b[j:] share from the start, or with `backward` a[:i] and b[:j] at their ends
    (at most `limit`). Whole chunks are compared until one differs; that one is halved towards the difference."""
    done, size, differs = 0, min(CHUNK, limit), False  # differs: the next `size` bytes hold a difference
    while size > 0 and not (differs and size == 1):
        probe = size // 2 if differs else size
        x, y = (i - done - probe, j - done - probe) if backward else (i + done, j + done)
        if a[x : x + probe] == b[y : y + probe]:
            done += probe
            size = size - probe if differs else min(CHUNK, limit - done)
        elif differs:
            size = probe
        else:
            differs = True
    return done
