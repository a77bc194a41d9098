"""Decode worker processes: spawned (never forked), ended with the process that started them however it ends,
and a worker that dies costs a scan only the track that killed it.

A decoder that crashes on a malformed file (FFmpeg segfaulting), or the kernel's OOM killer, kills its worker
process, and Python's process pool then fails every track in flight (BrokenProcessPool). `DecodePool.prepared`
starts a fresh pool instead, submits again the tracks that were only waiting, and retries each track a worker
was decoding at that moment alone, in a process of its own: one that kills that process again becomes an error
row saying how its decoder died; the others get their rows as if nothing happened.

Every worker watches the process that started it and exits within `PARENT_POLL_SECONDS` once that process is
gone (killed with SIGKILL included), so no worker, nor the resource tracker they keep alive, outlives a scan.
"""

from __future__ import annotations

import itertools
import os
import signal
import sys
import threading
import time
import types
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any

from mer_tag import prepare as preparing
from mer_tag.prepare import Prepared, init_worker

PARENT_POLL_SECONDS = 0.5  # how often a worker checks that its parent is alive: it outlives it by at most this
STUCK_CHECK_S = 1.0  # s between looks at a pool that finishes nothing, for a dead worker it has not noticed
STUCK_GRACE_S = 2.0  # s a dead worker may go unnoticed (the executor notices one within milliseconds)
# For tests only: a decode worker given the file of this name kills itself with SIGKILL, as a decoder that
# crashes on it would (the in-process path of `--jobs 0` ignores it: it would take the scan down).
CRASH_ON_ENV = "MER_TAG_TEST_CRASH_ON"
NOT_STARTED = -1  # a worker's slot in `started` while it decodes nothing
WORKER_NAME = "mer-tag-decode"  # what `ps` and `top` call a decode worker (Linux: at most 15 bytes)
RETRY_NAME = "mer-tag-retry"  # and a process decoding one track alone after a worker died
PR_SET_NAME = 15  # Linux <linux/prctl.h>: set the calling thread's (here: the process's) name

# Set in each worker by `_init_worker`: where it says which task it is decoding (its slot in a shared array).
_started: Any = None
_slot = NOT_STARTED


def start_pool(jobs: int, started: Any = None, slots: Any = None) -> ProcessPoolExecutor:
    """`jobs` decode processes, spawned now (never forked: a fork of a process that has loaded torch inherits
    its thread pools and locks); they import their stack while this process goes on, and each exits when this
    process is gone. `started`/`slots` (a shared array of `jobs` task ids and a counter, `DecodePool`'s):
    each worker records the task it is decoding there."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(
        max_workers=max(1, jobs),
        mp_context=context,
        initializer=_init_worker,
        initargs=(os.getpid(), started, slots),
    )
    with main_script_left_behind():
        for _ in range(max(1, jobs)):
            pool.submit(int)  # a no-op: the executor spawns a worker per task until it has `jobs`
    return pool


@contextmanager
def main_script_left_behind():
    """Processes spawned inside this block do not run this process's main script again. Spawn re-runs it in
    every child (as `__mp_main__`) when it has a file: for `mer-tag`, its entry point, which imports the
    command line (typer, rich: 0.08 CPU-s a worker; docs/performance.md), and for a caller's own script, all
    of its top level. A worker needs none of it: what it runs lives in mer_tag and is found by module name."""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")  # no file, no spec: nothing for spawn to re-run
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


def _init_worker(parent_pid: int, started: Any, slots: Any) -> None:
    global _started, _slot
    ignore_interrupts()
    name_process(WORKER_NAME)
    watch_parent(parent_pid)
    init_worker()
    if started is not None:
        with slots.get_lock():
            _slot, slots.value = slots.value, slots.value + 1
        _started = started


def ignore_interrupts() -> None:
    """Ctrl-C reaches every process of the terminal's group: a worker leaves it to its parent, which stops the
    pool, instead of dying with a KeyboardInterrupt traceback of its own on the user's screen."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def name_process(name: str) -> None:
    """Give this process a name `ps -e` and `top` show (Linux); elsewhere nothing."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL(None).prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0)
    except (OSError, AttributeError):
        pass


def watch_parent(parent_pid: int) -> None:
    """Exit this process once `parent_pid` is no longer its parent (it died, and this one was handed to init)."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_POLL_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="mer-tag-parent-watch", daemon=True).start()


def _prepare_marked(task: int, prepare, track, audio_config, midi_config) -> Prepared:
    """`prepare` in a pool worker, saying meanwhile which task it decodes (so a crash can be traced to it)."""
    if _started is not None and 0 <= _slot < len(_started):
        _started[_slot] = task
    crash_if_asked(track)
    item = prepare(track, audio_config, midi_config)
    if _started is not None and 0 <= _slot < len(_started):
        _started[_slot] = NOT_STARTED
    return item


def crash_if_asked(track) -> None:
    """Tests only (CRASH_ON_ENV): die as a decoder crashing on this track would."""
    if os.environ.get(CRASH_ON_ENV) and track.path.name == os.environ[CRASH_ON_ENV]:
        os.kill(os.getpid(), signal.SIGKILL)


class DecodePool:
    """`jobs` decode workers that survive their own deaths (see the module docstring); `close` ends them."""

    def __init__(self, jobs: int):
        self.jobs = max(1, jobs)
        self.pool: ProcessPoolExecutor | None = None
        self.started: Any = None
        self._alone: ThreadPoolExecutor | None = None  # runs the tracks retried alone, one at a time
        self._alone_futures: set[Future] = set()
        self.in_flight = 0
        self._dead_since: float | None  # when a dead worker was first seen while nothing finished (`_start`)
        self._losses: dict[int, int] = {}  # task → how often a pool broke with it out
        self._start()

    def _start(self) -> None:
        import multiprocessing

        self._dead_since = None
        context = multiprocessing.get_context("spawn")
        self.started = context.Array("q", [NOT_STARTED] * self.jobs, lock=False)
        self.pool = start_pool(self.jobs, self.started, context.Value("i", 0))

    def prepared(self, tracks: Iterable, audio_config, midi_config, max_in_flight: int) -> Iterator[list[Prepared]]:
        """Prepared tracks in batches as they finish, at most `max_in_flight` submitted at a time. The first
        ones are submitted now, when this is called, not at the first batch asked for: a caller may load its
        models meanwhile. The queue is topped up before each batch is handed out, so the workers decode while
        the caller runs models; `self.in_flight` says how many tracks are still out when a batch is handed out."""
        tasks = enumerate(tracks)
        pending: dict[Future, tuple[int, Any]] = {}
        configs = (preparing.prepare, audio_config, midi_config)  # looked up now: a profiler may wrap it
        self._refill(tasks, pending, configs, max_in_flight)
        return self._batches(tasks, pending, configs, max_in_flight)

    def _refill(self, tasks: Iterator, pending: dict[Future, tuple[int, Any]], configs, max_in_flight: int) -> None:
        room = max(0, max_in_flight - len(pending))
        for task, track in itertools.islice(tasks, room):
            pending[self._submit(task, track, configs)] = (task, track)
        self.in_flight = len(pending)

    def _batches(
        self, tasks: Iterator, pending: dict[Future, tuple[int, Any]], configs, max_in_flight: int
    ) -> Iterator[list[Prepared]]:
        while pending:
            done, _ = wait(pending, timeout=STUCK_CHECK_S, return_when=FIRST_COMPLETED)
            if not done:
                self._unstick_if_a_worker_died()
                continue
            self._dead_since = None
            ready, broken = [], False
            for future in done:
                task, track = pending.pop(future)
                try:
                    ready.append(future.result())
                except BrokenProcessPool:
                    pending[future] = (task, track)  # still to do: recovered below with the rest
                    broken = True
            if broken:
                self._recover(pending, configs)
            self._refill(tasks, pending, configs, max_in_flight)
            if ready:
                yield ready

    def _unstick_if_a_worker_died(self) -> None:
        """A worker killed while it sent its result leaves half a message in the executor's result pipe, and
        CPython's executor (3.11-3.13) then waits for the rest for ever: every process still holds the pipe's
        write end, so no end of file comes, and the pool never learns it broke (a scan hung for good). When a
        worker has been dead for STUCK_GRACE_S with nothing finished, feed that pipe zeros until the executor's
        read ends: the message does not unpickle, the executor breaks as for any dead worker, and `_recover`
        takes the tracks on (BrokenProcessPool)."""
        processes = dict(getattr(self.pool, "_processes", None) or {})
        if not any(process.exitcode is not None for process in processes.values()):
            self._dead_since = None
            return
        now = time.monotonic()
        if self._dead_since is None:
            self._dead_since = now
        elif now - self._dead_since >= STUCK_GRACE_S:
            self._dead_since = float("inf")  # fed once per pool: `_start` gives a new one
            manager = getattr(self.pool, "_executor_manager_thread", None)
            writer = getattr(getattr(self.pool, "_result_queue", None), "_writer", None)
            if manager is not None and writer is not None:
                fd = os.dup(writer.fileno())  # our own: the executor closing its one can never hand the number on
                threading.Thread(target=_feed_zeros, args=(fd, manager), daemon=True).start()

    def _submit(self, task: int, track, configs) -> Future:
        assert self.pool is not None
        try:
            prepare, audio_config, midi_config = configs
            return self.pool.submit(_prepare_marked, task, prepare, track, audio_config, midi_config)
        except BrokenProcessPool:  # it broke since the last look: the future fails, and recovery takes it
            failed: Future = Future()
            failed.set_exception(BrokenProcessPool("a decode worker died"))
            return failed

    def _recover(self, pending: dict[Future, tuple[int, Any]], configs) -> None:
        """A worker died: the tracks being decoded then are retried alone, the others go to a fresh pool."""
        decoding = {task for task in self.started if task != NOT_STARTED}
        lost = {
            f: t
            for f, t in pending.items()
            if f not in self._alone_futures and (not f.done() or f.exception() is not None)
        }
        assert self.pool is not None
        self.pool.shutdown(wait=True, cancel_futures=True)
        self._start()
        for future, (task, track) in lost.items():
            del pending[future]
            self._losses[task] = self._losses.get(task, 0) + 1
            # Alone: the tasks being decoded, and one out in a pool that broke twice (a worker killed while it
            # sent that task's result, after its decode had ended, would otherwise be sent to every new pool).
            if task in decoding or self._losses[task] >= 2:
                prepare, audio_config, midi_config = configs
                alone = self._alone_pool().submit(prepare_alone, track, audio_config, midi_config, prepare)
                self._alone_futures.add(alone)
                pending[alone] = (task, track)
            else:
                pending[self._submit(task, track, configs)] = (task, track)

    def _alone_pool(self) -> ThreadPoolExecutor:
        if self._alone is None:
            self._alone = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mer-tag-alone")
        return self._alone

    def close(self) -> None:
        """Stop the workers; what they had left is cancelled. Safe to call twice."""
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
            self.pool = None
        if self._alone is not None:
            self._alone.shutdown(cancel_futures=True)
            self._alone = None


def _feed_zeros(fd: int, reader: threading.Thread) -> None:
    """Write zeros to the pipe `fd` (a duplicate of the executor's write end, closed here) until the thread
    stuck reading it has gone (see `_unstick_if_a_worker_died`); a daemon thread, so a full pipe never holds up
    the exit, and one with no reader left ends the writes (EPIPE)."""
    chunk = b"\0" * 65536
    try:
        while reader.is_alive():
            os.write(fd, chunk)
    except OSError:  # the executor has shut down and closed the read end
        pass
    finally:
        os.close(fd)


def prepare_alone(track, audio_config, midi_config, prepare=None) -> Prepared:
    """`prepare` in a process of its own, spawned for this one track: its Prepared, or, when the process
    dies first, an error saying how its decoder crashed."""
    import multiprocessing

    prepare = prepare or preparing.prepare
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(
        target=_prepare_and_send, args=(send, os.getpid(), prepare, track, audio_config, midi_config), daemon=True
    )
    with main_script_left_behind():
        process.start()
    send.close()  # only the child holds the sending end: its death is an EOF here
    try:
        item = receive.recv()
    except EOFError:
        process.join()
        return preparing.failed(track, crash_reason(process.exitcode))
    finally:
        receive.close()
    process.join()
    return item


def _prepare_and_send(send, parent_pid: int, prepare, track, audio_config, midi_config) -> None:
    ignore_interrupts()
    name_process(RETRY_NAME)
    watch_parent(parent_pid)
    init_worker()
    crash_if_asked(track)
    send.send(prepare(track, audio_config, midi_config))
    send.close()


def crash_reason(exitcode: int | None) -> str:
    """One line on how a decode process died: 'the decoder crashed: its process was killed by SIGSEGV'."""
    if exitcode is not None and exitcode < 0:
        try:
            how = f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            how = f"killed by signal {-exitcode}"
        if exitcode == -signal.SIGKILL:
            how += " (out of memory, or killed from outside)"
    else:
        how = f"ended with exit status {exitcode}"
    return f"the decoder crashed twice on this file: its process was {how}"
