"""What becomes of each file a run looks at: a `FileResult`, gathered in a `TagSummary`; `TagError` is the
one-line reason a file was left as it was, and `reason` turns any exception into such a line."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mer_tag.errors import MerTagError, first_line


class TagError(MerTagError):
    """A one-line reason why one file was left as it was."""


# Why a track was not tagged, for a summary that groups them and says how to include them (`FileResult.why`).
BELOW_CONFIDENCE = "below confidence"  # its confidence is under --min-confidence
FAILED_IN_SCAN = "failed in the scan"  # its row's status is not ok
NO_PREDICTION = "no prediction"  # an ok row without a cluster or a confidence
HAS_A_MOOD = "has a mood"  # the file already has another mood (kept unless --overwrite)


@dataclass
class FileResult:
    path: str
    action: str  # tagged, restored, fields restored, would tag, would restore, unchanged, kept, skipped, failed
    detail: str = ""
    why: str = ""  # for skipped and kept: one of the reasons above


@dataclass
class TagSummary:
    results: list[FileResult] = field(default_factory=list)
    journal: Path | None = None  # None when nothing was written
    cleared: list[Path] = field(default_factory=list)  # temp copies an interrupted run left (listed only, dry run)
    restamped: dict[str, int] = field(default_factory=dict)  # results file -> rows given their files' new stamp
    notes: list[str] = field(default_factory=list)  # one line each: what could not be done beside the files

    def count(self, action: str) -> int:
        return sum(r.action == action for r in self.results)

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.action == "failed"]


Progress = Callable[[int, int, FileResult], None]  # (files done, files in all, the latest file's result)


def reason(exc: BaseException) -> str:
    """One line for a file's result: a TagError's own message; anything else's with its kind in front, as
    an unforeseen error (a mutagen or OS one) says more to a person with it."""
    text = first_line(exc)
    return text if isinstance(exc, TagError) else f"{type(exc).__name__}: {text}"
