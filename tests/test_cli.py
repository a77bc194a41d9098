"""What a person meets at the command line: help in plain words, --version, one-line usage errors."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mer_tag import __version__
from mer_tag.cli import COMMANDS, app, main

ROOT = Path(__file__).parents[1]
# Typer's own names for values: "<bool>", "<int>", "<list[Path]>", "{paths}" — Python, not help.
PYTHON_PLACEHOLDER = re.compile(r"<(bool|int|float|str|path|text|list\[\w+\])>|\{paths?\}|list\[|NoneType", re.I)


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`mer-tag ARGS` as a person runs it: its own process, stdout and stderr on pipes."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "80"}
    return subprocess.run(
        [sys.executable, "-m", "mer_tag", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )


@pytest.mark.parametrize("command", [[]] + [[name] for _, _, name in COMMANDS])
def test_help_names_values_in_words_not_python_types(command, capsys):
    assert main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "Usage: mer-tag" in out
    assert not PYTHON_PLACEHOLDER.search(out), PYTHON_PLACEHOLDER.search(out)
    assert "../shared" not in out  # examples use paths a person who installed mer-tag has
    examples = [line for line in out.splitlines() if line.lstrip().startswith("mer-tag ")]
    assert examples and all(line.startswith("   mer-tag ") for line in examples), examples  # set off, not prose


def test_top_level_help_teaches_with_examples_and_moods():
    out = run_cli("--help").stdout
    assert "mer-tag scan ~/Music" in out and "mer-tag report moods.csv" in out
    assert all(mood in out for mood in ("Passionate", "Cheerful", "Wistful", "Humorous", "Aggressive"))
    assert "--version" in out


def test_scan_help_explains_its_jargon_and_exit_status(capsys):
    assert main(["scan", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--retry-failed" in out and "Exit status" in out
    assert "PATH..." in out and "FILE" in out
    assert "encoders" not in out and "bf16" in out and "16-bit" in out  # a word explained, not just used


def test_train_examples_use_a_dataset_folder_and_point_to_the_docs(capsys):
    assert main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    assert "mer-tag train --data ~/datasets/mirex-mood" in out and "docs/training.md" in out


def test_version_prints_the_installed_version():
    run = run_cli("--version")
    assert run.returncode == 0 and run.stderr == ""
    from importlib.metadata import PackageNotFoundError, version

    try:
        expected = version("mer-tag")
    except PackageNotFoundError:
        expected = __version__
    assert run.stdout.strip() == f"mer-tag {expected}"


@pytest.mark.parametrize(
    "args",
    [
        ["scan", "--jobs", "-1", "."],
        ["scan", "--jobs", "many", "."],
        ["scan", "--no-such-option", "."],
        ["scan"],
        ["nope"],
        ["report", "--top-n", "0", "x.csv"],
        ["train", "--jobs", "0", "--data", "."],
    ],
)
def test_bad_options_are_one_line_on_stderr_exit_2(args, tmp_path):
    run = run_cli(*args, cwd=tmp_path)
    assert run.returncode == 2, run
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in run.stderr, run.stderr
    assert "--help" in lines[0] and run.stdout == ""
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize("command", [["train", "--data"], ["eval", "--data"], ["report"], ["playlists", "-o", "pl"]])
def test_every_command_reports_a_missing_input_the_same_way(command, tmp_path):
    missing = tmp_path / "nowhere" / "data.csv"
    args = [*command, str(missing)] if command[-1] in ("--data", "report") else [command[0], str(missing), *command[1:]]
    run = run_cli(*args, cwd=tmp_path)
    assert run.returncode == 2, run
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(missing) in lines[0], run.stderr


def test_the_command_line_loads_no_heavy_library_until_a_command_runs():
    """`mer-tag --help` answers at once: importing the CLI (every command's module) loads typer and mer-tag's
    own light modules, never the stacks a command needs (torch, numpy, polars, rich, the decoders)."""
    heavy = ("torch", "numpy", "polars", "rich", "av", "mutagen", "librosa", "scipy", "sklearn", "transformers")
    code = f"import sys, mer_tag.cli; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def _help_of(name: str, capsys, monkeypatch) -> str:
    monkeypatch.setenv("COLUMNS", "80")  # a common terminal: the help must read whole in it
    assert main([name, "--help"]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("name", [name for _, _, name in COMMANDS])
def test_help_shows_every_option_text_and_example_whole_at_80_columns(name, capsys, monkeypatch):
    """No option's text cut short ("'path,label[,lyrics_path,midi_p…") or eaten as markup ("[labels]"), and no
    example broken in the middle of its command: long ones continue with a backslash, as a shell reads them."""
    from typer.main import get_command

    out = _help_of(name, capsys, monkeypatch)
    words = set(out.replace("│", " ").split())
    command = get_command(app).commands[name]
    for param in command.params:
        text = (getattr(param, "help", None) or "").replace("\\[", "[")  # "\\[": rich's escape for a bracket
        assert [w for w in text.split() if w not in words] == [], param.name
    lines = {line.strip() for line in out.splitlines()}
    examples = [line.strip() for line in (command.help or "").splitlines() if line.startswith("  ") and line.strip()]
    assert examples and [line for line in examples if line not in lines] == []


@pytest.mark.parametrize("name", [name for _, _, name in COMMANDS])
def test_help_names_each_value_for_what_it_is(name):
    """FOLDER, FILE, NAME…: never the generic TEXT or PATH, except scan's PATH, which is a folder or a file."""
    from typer.main import get_command

    for param in get_command(app).commands[name].params:
        if (name, param.name) != ("scan", "paths"):
            assert param.metavar not in ("TEXT", "PATH"), (name, param.name, param.metavar)


def test_the_command_exits_as_main_says_after_its_exit_handlers_and_output(tmp_path, tiny_model):
    """`mer-tag` (cli.run) skips the interpreter's teardown once torch is in, and nothing else: the exit status
    is main's, stdout and stderr arrive whole, the exit handlers (a caller's, multiprocessing's) run, and the
    resource tracker has nothing left to warn about."""
    from media import tone, write_audio

    lib = tmp_path / "lib"
    write_audio(lib / "a.wav", tone(3))
    (lib / "broken.mp3").write_bytes(b"not audio")
    out = tmp_path / "m.csv"
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('exit handlers ran', flush=True))\n"
        "class Kept:\n"
        "    def __del__(self): print('torn down', flush=True)  # what the interpreter's teardown would run\n"
        "kept = Kept()\n"
        f"sys.argv = ['mer-tag', 'scan', {str(lib)!r}, '-o', {str(out)!r}, '--model', {str(tiny_model)!r}, '-j', '1']\n"
        "from mer_tag.cli import run\n"
        "run()\n"
        "print('not reached')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1  # a track failed: main's status
    assert proc.stdout.splitlines() == ["exit handlers ran"]  # and no teardown: no "torn down"
    assert "1 ok, 1 failed" in proc.stderr and "broken.mp3" in proc.stderr
    assert "leaked" not in proc.stderr and "Traceback" not in proc.stderr
    assert len(out.read_text().splitlines()) == 3  # the header and both rows
