"""What a person sees on stderr while a scan runs: what it is doing from the first second, then a bar.

One clock for everything: the bar's elapsed time counts from the scan's start, as its summary does. The
rate counts tracks finished after the first ones, over the time since those arrived: rows come in bursts
(the model scores every track that is ready in one pass), and the first burst lands the instant the model
is up, so counting it would read thousands of tracks a second.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

# A rate needs this long of steady work behind it before it is shown (seconds): one or two bursts of
# rows say little about the next thousand tracks.
RATE_AFTER_S = 2.0
# Rows this close after the first one came in the same burst (seconds): a model pass takes far longer.
BURST_S = 0.05


class ScanFeedback:
    """Stages ('finding tracks…', 'loading the model…'), the plan ('N to do, M already done') and the bar.

    On a terminal the stage and the bar share one line that redraws; elsewhere (a pipe, a log) only the
    plan is printed, as one line. With `enabled` false nothing is printed at all. When the rows themselves
    go to the same terminal (`-o -`), nothing redraws, so a row never lands on the bar's line: the stages
    print as plain lines before the first row, and the rows show the progress.
    """

    def __init__(self, enabled: bool, started: float, rows_on_stdout: bool = False):
        self.started = started  # time.monotonic() when the scan began
        self.enabled = enabled
        self.console: Any = stderr_console() if enabled else None
        on_terminal = self.console is not None and self.console.is_terminal
        self.live = on_terminal and not (rows_on_stdout and _stdout_shares_screen())
        self.progress: Any = None  # a rich Progress while one is drawn
        self.task: Any = None
        self.total: int | None = None
        self.done = 0
        self.first_at: float | None = None  # when the first row arrived
        self.first_burst = 0  # rows that arrived with it
        self._stage: str | None = None  # the stage shown now

    def stage(self, text: str) -> None:
        """What the scan is doing now, before tracks finish (replaces the last stage)."""
        if not self.enabled or text == self._stage:  # the bar's first words, said again by the engine
            return
        self._stage = text
        if not self.live:
            if self.console.is_terminal:  # rows are on this screen: say it once, on its own line
                self.console.print(text, highlight=False)
            return
        self._start()
        self.progress.update(self.task, description=text)
        self.progress.start()  # no-op once started; the first frame already says what is happening

    def found(self, count: int) -> None:
        """Tracks found so far by the walk."""
        if self.progress is not None:
            self.progress.update(self.task, completed=count)

    def note(self, text: str) -> None:
        """A line that stays (above the bar on a terminal)."""
        if self.enabled:
            self.console.print(text, highlight=False)

    def start_bar(self, total: int, text: str = "loading the model…") -> None:
        """From here the bar counts tracks finished out of `total`; `text` shows until the first one is."""
        self.total, self.done = total, 0
        if self.live:
            self._start()
            self.progress.reset(self.task, total=total, completed=0, description=text)
            self.progress.start()
            self._stage = text
        else:
            self.stage(text)

    def advance(self) -> None:
        now = time.monotonic()
        self.done += 1
        if self.first_at is None:
            self.first_at = now
        if now - self.first_at < BURST_S:
            self.first_burst = self.done
        if self.progress is not None:
            self.progress.update(self.task, completed=self.done, description="scanning")
            self._stage = "scanning"

    def rate(self) -> float | None:
        """Tracks a second since the first rows arrived, not counting them; None until it means something."""
        if self.first_at is None:
            return None
        since = time.monotonic() - self.first_at
        finished = self.total is not None and self.done >= self.total
        if (since < RATE_AFTER_S and not finished) or self.done <= self.first_burst:
            return None
        return (self.done - self.first_burst) / since

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def _start(self) -> None:
        if self.progress is not None:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn
        from rich.text import Text

        feedback = self

        class Elapsed(ProgressColumn):
            def render(self, task):
                return Text(_clock(time.monotonic() - feedback.started), style="progress.elapsed")

        class Rate(ProgressColumn):
            def render(self, task):
                rate = feedback.rate()
                return Text(f"{rate:.2f} tracks/s" if rate else "… tracks/s", style="progress.data.speed")

        class Remaining(ProgressColumn):
            def render(self, task):
                rate = feedback.rate()
                if feedback.total is None:
                    return Text("")
                left = "…" if not rate else _clock((feedback.total - feedback.done) / rate)
                if feedback.done >= feedback.total:
                    return Text("done", style="progress.remaining")
                return Text(f"ETA {left}", style="progress.remaining")

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            Rate(),
            Elapsed(),
            Remaining(),
            console=self.console,
            transient=False,
        )
        self.task = self.progress.add_task("", total=None)


def stderr_console():
    """A rich Console on stderr. On a terminal it wraps at the screen's width; anywhere else (a pipe, a log
    file) rich would wrap at 80 columns and break a long path across lines, so lines are left whole."""
    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal:
        console.soft_wrap = True  # print() does not wrap; tables and bars still fit console.width
    return console


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _stdout_shares_screen() -> bool:
    """Whether stdout is a terminal showing what stderr shows (so a row written there meets the bar)."""
    if not sys.stdout.isatty():
        return False
    try:
        return os.path.samestat(os.fstat(sys.stdout.fileno()), os.fstat(sys.stderr.fileno()))
    except (OSError, ValueError):
        return True
