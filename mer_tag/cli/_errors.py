"""How a command reports a usage error: one line on stderr, exit status 2, no traceback."""

from __future__ import annotations

import typer


def usage_error(message: object) -> SystemExit:
    """Print `error: MESSAGE` (one line) on stderr and return the SystemExit(2) to raise:
    `raise usage_error(exc) from None`. A SystemExit, which `mer_tag.cli.main` and the `mer-tag` script
    both turn into the exit status."""
    line = " ".join(str(message).split("\n")).strip() or "usage error"
    typer.echo(f"{typer.style('error:', fg='red')} {line}", err=True)
    return SystemExit(2)
