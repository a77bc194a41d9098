"""The one base of every error mer-tag raises on purpose, and how any error becomes one line.

A `MerTagError`'s message is one line a person can act on: what is wrong, with what, and what to do.
Each stage keeps its own subclass (AudioError, BundleError, ResultsError, TagError, …) so a caller can
catch the one it expects; the command line catches this base, prints `error: MESSAGE` and exits with
status 2. A track's own problem never escapes a scan: it becomes that track's row (`status=error`).
Anything else that escapes is a bug, and keeps its traceback.
"""

from __future__ import annotations


class MerTagError(Exception):
    """A problem mer-tag foresaw and can explain in one line."""


def first_line(exc: BaseException) -> str:
    """The first line of `exc`'s message (polars, PyAV and scikit-learn explain over several), else its kind."""
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__
