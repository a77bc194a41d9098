"""The `mer-tag` command line: one small module per subcommand, each a thin layer over a library function.

Only typer is imported here; every command imports torch, librosa and friends inside its own body, so
`mer-tag --help` answers at once.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="mer-tag",
    help="Listen to a music library and say what each song feels like (the five MIREX mood clusters).",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)

# (module under mer_tag.cli, function name, command name)
COMMANDS = (
    ("scan", "scan", "scan"),
    ("train", "train", "train"),
    ("train", "evaluate", "eval"),
    ("crossval", "crossval", "crossval"),
    ("report", "report", "report"),
    ("report", "playlists", "playlists"),
    ("tag", "tag", "tag"),
    ("tag", "untag", "untag"),
)


def _register() -> None:
    for module_name, function_name, command_name in COMMANDS:
        module = importlib.import_module(f"mer_tag.cli.{module_name}")
        app.command(command_name)(getattr(module, function_name))


_register()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI in-process (tests call this) and return the exit code instead of exiting.

    Exit codes: 0 all good, 1 some tracks or files failed, 2 usage errors, 130 interrupted.
    """
    try:
        code = app(args=argv, prog_name="mer-tag", standalone_mode=False)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        return 130
    except typer.TyperException as exc:  # typer's own click: usage errors, bad options
        exc.show()
        return int(getattr(exc, "exit_code", 2))
    return code if isinstance(code, int) else 0
