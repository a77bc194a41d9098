"""Process-wide settings for speed. Only what starts a process calls these (the CLI's commands, before torch
loads; the engines for their own worker processes): a library call leaves its caller's process as it found it.
docs/performance.md has the measurements behind each.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's <malloc.h>
KEEP_FREED_BYTES = 1 << 30  # 1 GiB: above any one buffer a scan allocates
# Worker processes a command may start: far above what any machine puts to use (each decode worker holds
# about 120 MB), low enough that a slip of the finger (`-j 10000`) is an error rather than thousands of them.
MAX_JOBS = 256


def let_idle_threads_sleep() -> None:
    """In a process about to run the models: idle OpenMP threads sleep instead of spinning, so they never
    steal the cores the decode workers share (84 s → 70 s on the 20-track benchmark). OpenMP reads it once,
    when torch starts, so call this before importing torch; a value the user set wins."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def reuse_freed_memory() -> None:
    """glibc only: keep freed memory in the heap instead of handing each large buffer (MiniLM's attention
    maps, a decoded track) back to the kernel and faulting it in afresh on the next call. On the 100-track
    benchmark: 2.3 M → 0.16 M page faults, 5.1 → 1.1 s of system time, for about 70 MB more peak RSS.
    This process is set now, and processes it starts inherit the setting; a value the user set wins."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return
    for name, option in (("MALLOC_MMAP_THRESHOLD_", M_MMAP_THRESHOLD), ("MALLOC_TRIM_THRESHOLD_", M_TRIM_THRESHOLD)):
        os.environ.setdefault(name, str(KEEP_FREED_BYTES))
        try:
            ctypes.CDLL("libc.so.6").mallopt(option, int(os.environ[name]))
        except (OSError, AttributeError, ValueError):  # musl, or a value the user set that is not a number
            return


@contextmanager
def torch_threads(n: int):
    """torch runs on `n` threads inside the block, on as many as before after it."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, n))
    try:
        yield
    finally:
        torch.set_num_threads(before)
