"""How every command talks on stderr: a usage error is one line (`error: …`) and exit status 2, never a
traceback; messages are never wrapped into a pipe or a log, so a path and its reason stay on one line."""

from __future__ import annotations

import typer


def usage_error(message: object) -> SystemExit:
    """Print `error: MESSAGE` (one line) on stderr and return the SystemExit(2) to raise:
    `raise usage_error(exc) from None`. A SystemExit, which `mer_tag.cli.main` and the `mer-tag` script
    both turn into the exit status."""
    line = " ".join(str(message).split("\n")).strip() or "usage error"
    typer.echo(f"{typer.style('error:', fg='red')} {line}", err=True)
    return SystemExit(2)


def stderr_console():
    """A rich Console on stderr. On a terminal it wraps at the screen's width; anywhere else (a pipe, a log
    file) rich would wrap at 80 columns and break a long path across lines, so lines are left whole."""
    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal:
        console.soft_wrap = True  # print() does not wrap; tables and bars still fit console.width
    return console
