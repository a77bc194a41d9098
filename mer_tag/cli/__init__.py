"""The `mer-tag` command line: one small module per subcommand, each a thin layer over a library function.

Importing this loads typer and mer-tag's own light modules, never a heavy stack: every command imports torch,
numpy, polars, rich and the decoders inside its own body, so `mer-tag --help` answers at once
(tests/test_cli.py holds it).
"""

from __future__ import annotations

import importlib
from typing import Annotated

import typer

from mer_tag.cli._errors import usage_error
from mer_tag.errors import MerTagError

HELP = """Listen to a music library and say what each song feels like.

Each song gets one of five moods, the clusters music researchers use to compare mood taggers (the MIREX
mood task): 1 Passionate (rousing, confident), 2 Cheerful (fun, sweet), 3 Wistful (bittersweet,
brooding), 4 Humorous (silly, witty), 5 Aggressive (fiery, intense). It listens to the audio and, where
it finds them, reads the lyrics and the MIDI beside each song.

Examples:

  mer-tag scan ~/Music                   # each song's mood → moods.csv

  mer-tag report moods.csv               # a page to browse: report.html

  mer-tag playlists moods.csv -o ~/Music/Moods

  mer-tag tag moods.csv                  # moods into the files' tags
"""

# Typer names values by their Python type ("<int>", "<list[Path]>", "{paths}"); help names them in words.
METAVARS = {"int": "N", "float": "N", "str": "TEXT", "path": "PATH"}


def _plain_metavars(params) -> None:
    """Give every parameter a metavar a person reads (PATH, N, TEXT) and none to an on/off flag."""
    for param in params:
        if getattr(param, "is_flag", False):
            param.metavar = ""
            continue
        if param.metavar is None:
            param.metavar = _metavar(param)
        if hasattr(param, "_get_number_range_help_str"):  # "[0.0<=x<=1.0]" → "[0 to 1]"
            param._get_number_range_help_str = lambda param=param: _range_words(param)
        if param.param_type_name == "argument":
            usage = param.metavar + ("..." if param.nargs != 1 else "")
            param.get_usage_pieces = lambda ctx, usage=usage: [usage]
            param.display_type_rich = lambda ctx: None  # the name column already says it


def _reflow(text: str | None) -> str | None:
    """Join a docstring paragraph's lines, so help wraps at the terminal's width (rich markup keeps every line
    break, and a line broken at 110 columns in the source comes out ragged in 80); indented lines
    (examples) stay as they are."""
    if not text:
        return text
    import inspect

    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(p if p.startswith((" ", "\b")) else " ".join(p.split("\n")) for p in paragraphs)


def _range_words(param) -> str | None:
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    if low is not None and high is not None:
        return f"{low:g} to {high:g}"
    if low is not None:
        return f"at least {low:g}"
    return None if high is None else f"at most {high:g}"


def _metavar(param) -> str:
    """CHOICE|OTHER for a choice, else a word for the value's type (typer >= 0.2x describes it in
    `type_descriptor`; older typer in click's `type`)."""
    described = getattr(param, "type_descriptor", None)
    if described is not None:
        if described.is_choice:
            return "|".join(str(getattr(c, "value", c)) for c in described.choices or ())
        annotation = described.annotation
        while getattr(annotation, "__args__", None):  # list[Path] → Path
            annotation = annotation.__args__[0]
        name = "path" if described.is_path else getattr(annotation, "__name__", "text").lower()
    else:
        choices = getattr(param.type, "choices", None)
        if choices:
            return "|".join(map(str, choices))
        name = getattr(param.type, "name", "text").lower()
    return METAVARS.get(name, "TEXT")


class _PlainHelp:
    """Mixed into typer's command and group: plain metavars, for the --help option too (made on demand)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _plain_metavars(self.params)
        self.help = _reflow(self.help)

    def get_help_option(self, ctx):
        option = super().get_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option


class Command(_PlainHelp, typer.core.TyperCommand):
    pass


class Group(_PlainHelp, typer.core.TyperGroup):
    pass


app = typer.Typer(
    name="mer-tag",
    help=HELP,
    cls=Group,
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


def version() -> str:
    """The installed distribution's version, else the source tree's (run from a checkout)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("mer-tag")
    except PackageNotFoundError:
        from mer_tag import __version__

        return __version__


def _show_version(wanted: bool) -> None:
    if wanted:
        typer.echo(f"mer-tag {version()}")
        raise typer.Exit()


@app.callback()
def _top(
    show_version: Annotated[
        bool, typer.Option("--version", is_eager=True, callback=_show_version, help="Print the version and exit.")
    ] = False,
) -> None:
    pass


def _register() -> None:
    for module_name, function_name, command_name in COMMANDS:
        module = importlib.import_module(f"mer_tag.cli.{module_name}")
        app.command(command_name, cls=Command)(getattr(module, function_name))


_register()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI in-process (tests call this) and return the exit code instead of exiting.

    Exit codes: 0 all good, 1 some tracks or files failed, 2 usage errors, 130 interrupted. A MerTagError that
    a command lets through (a results file that is not one, a model that will not load, a bad dataset) is a
    usage error: one `error: …` line, status 2.
    """
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    if not args:  # `mer-tag` alone: the help, and the status of a command that did nothing
        app(args=["--help"], prog_name="mer-tag", standalone_mode=False)
        return 2
    try:
        code = app(args=args, prog_name="mer-tag", standalone_mode=False)
    except MerTagError as exc:
        usage_error(exc)
        return 2
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        return 130
    except typer.TyperException as exc:  # typer's own click: usage errors, bad options
        return _click_error(exc)
    if code == 130:  # typer's answer to a KeyboardInterrupt: Ctrl-C, or SIGTERM under `mer-tag` (run)
        typer.echo("interrupted: what was finished is kept (scan: the same command again goes on)", err=True)
    return code if isinstance(code, int) else 0


def run() -> None:
    """The `mer-tag` command (its console script, and `python -m mer_tag`): `main`, then the process's exit.

    Once torch is loaded (scan, eval, train), that exit skips tearing the interpreter down: freeing every module
    torch brought and running its C++ destructors took 0.5 CPU-s at the end of every such command, after the
    last row (docs/performance.md, #27). What an exit must do still happens first: stdout and stderr are
    flushed and the exit handlers run (multiprocessing's among them: pools joined, the resource tracker told).
    With another thread of ours still running, the ordinary exit waits for it as before."""
    import signal
    import sys

    signal.signal(signal.SIGTERM, _interrupt)  # `kill`, a service manager's stop: ended as Ctrl-C ends it
    code = main()
    if "torch" in sys.modules and _only_the_main_thread():
        _exit_now(code)
    sys.exit(code)


def _interrupt(signum, frame) -> None:
    """SIGTERM as Ctrl-C: the rows, journals and results a command has are closed as after Ctrl-C (a Parquet
    scan's journal folded in, the workers stopped), instead of the process ending where it stood."""
    raise KeyboardInterrupt


def _only_the_main_thread() -> bool:
    import threading

    return not any(t is not threading.main_thread() and t.is_alive() and not t.daemon for t in threading.enumerate())


def _exit_now(code: int) -> None:
    """Flush, run the exit handlers, and end the process without the interpreter's teardown."""
    import atexit
    import os
    import sys

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can reach it anyway
            pass
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _click_error(exc) -> int:
    """A bad option or a missing argument: the same one line as every other usage error, with a pointer to
    the command's help (click would print usage, a hint and a blank line first)."""
    ctx = getattr(exc, "ctx", None)
    if ctx is None:  # a bare TyperException is only a message
        usage_error(exc.format_message())
        return int(getattr(exc, "exit_code", 2))
    usage_error(f"{exc.format_message()} (see: {ctx.command_path} --help)")
    return int(getattr(exc, "exit_code", 2))
