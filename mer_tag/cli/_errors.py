"""How every command talks on stderr: a usage error is one line (`error: …`) and exit status 2, never a
traceback; messages are never wrapped into a pipe or a log, so a path and its reason stay on one line."""

from __future__ import annotations

import typer

from mer_tag.progress import stderr_console  # every command's stderr, as scan's progress uses it

__all__ = ["check_folder", "stderr_console", "usage_error"]


def usage_error(message: object) -> SystemExit:
    """Print `error: MESSAGE` (one line) on stderr and return the SystemExit(2) to raise:
    `raise usage_error(exc) from None`. A SystemExit, which `mer_tag.cli.main` and the `mer-tag` script
    both turn into the exit status."""
    line = " ".join(str(message).split("\n")).strip() or "usage error"
    typer.echo(f"{typer.style('error:', fg='red')} {line}", err=True)
    return SystemExit(2)


def check_folder(option: str, folder) -> None:
    """A usage error when `folder` (given to `option`) cannot be a folder to write in: it, or a folder above
    it, is a file. Asked before a long run starts, not found out at its end."""
    from pathlib import Path

    if folder is None:
        return
    folder = Path(folder)
    blocker = next((p for p in [folder, *folder.parents] if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise usage_error(f"{option} {folder}: {blocker} is a file, not a folder")
