"""When does `mer-tag scan` first show something on a terminal, and when does it end?

    python benchmarks/first_output.py FOLDER [--repeats 3] [--model default] [--jobs 2]

Runs `mer-tag scan FOLDER -o TMP.csv --force` (the console script; a fresh process each time) with its
stdout and stderr on a pseudo-terminal, as a person running it sees it, and prints the seconds from launch to
the first byte it writes there and to its exit. Use it on `throughput.py --real --tracks 8 --format flac`'s library
(.cache/bench/throughput/real-flac-8-v2) for issue #18's "something on screen within 1 s".
"""

from __future__ import annotations

import argparse
import os
import pty
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def one_run(folder: Path, model: str, jobs: int) -> tuple[float, float]:
    """(seconds to the first byte on the terminal, seconds to exit) of one scan."""
    main_fd, child_fd = pty.openpty()
    with tempfile.TemporaryDirectory() as tmp:
        command = [*mer_tag_command(), "scan", str(folder), "-o", f"{tmp}/moods.csv", "--force"]
        started = time.perf_counter()
        process = subprocess.Popen(
            [*command, "--model", model, "--jobs", str(jobs)],
            stdout=child_fd,
            stderr=child_fd,
            stdin=subprocess.DEVNULL,
        )
        os.close(child_fd)
        first = None
        while True:
            ready, _, _ = select.select([main_fd], [], [], 0.01)
            if ready:
                try:
                    chunk = os.read(main_fd, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                first = first if first is not None else time.perf_counter() - started
            elif process.poll() is not None:
                break
        process.wait()
        ended = time.perf_counter() - started
        os.close(main_fd)
    if process.returncode not in (0, 1):
        raise SystemExit(f"scan exited with {process.returncode}")
    return (first if first is not None else float("nan")), ended


def mer_tag_command() -> list[str]:
    """The `mer-tag` console script beside this Python, as a person runs it (its decode workers used to import
    the whole command line again, which `python -m mer_tag` never did: #27); else `python -m mer_tag`."""
    script = Path(sys.executable).with_name("mer-tag")
    return [str(script)] if script.exists() else [sys.executable, "-m", "mer_tag"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default="default")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    for k in range(args.repeats):
        first, ended = one_run(args.folder, args.model, args.jobs)
        print(f"run {k + 1}: first output {first:.2f} s, exit {ended:.2f} s")


if __name__ == "__main__":
    main()
