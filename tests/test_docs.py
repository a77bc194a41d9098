"""The docs say what the code and the model card say: names, numbers and columns a reader will act on."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mer_tag import bundle as bundle_io
from mer_tag.cli import main
from mer_tag.labels import MIREX

DOCS = Path(__file__).parents[1] / "docs"


def test_tagging_docs_name_the_shipped_model_as_its_card_does():
    shipped = bundle_io.read_card("default").ref
    named = set(re.findall(r"`(default@[\d.]+)`", (DOCS / "tagging.md").read_text()))
    assert named == {shipped}


def test_docs_and_tag_help_quote_the_measured_accuracy_of_the_model_card(capsys, monkeypatch):
    card = (DOCS / "model-card.md").read_text()
    row = next(line for line in card.splitlines() if line.startswith("| five clusters, fused"))
    overall = round(float(row.rstrip(" |").rsplit("|", 1)[1]) * 100)  # the "all" column: every song, CV
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["tag", "--help"]) == 0
    tag_help = " ".join(capsys.readouterr().out.replace("│", " ").split())  # the words, across the box's lines
    assert f"against {overall} % for all tracks" in tag_help
    assert f"against {overall} % for all;" in card
    output = (DOCS / "output.md").read_text()
    assert f"right {overall} % of the time on unseen artists" in output
    assert not re.search(r"right (?!" + str(overall) + r" )\d+ % of the time on unseen artists", output)


def test_output_docs_say_which_mood_each_probability_column_is():
    output = (DOCS / "output.md").read_text()
    line = next(line for line in output.splitlines() if line.startswith("| `prob_cluster_1`"))
    for k, name in enumerate(MIREX.names, start=1):
        assert re.search(rf"`(prob_cluster)?_{k}` {name}\b", line), name


def test_the_readmes_first_command_writes_its_results_where_git_ignores_them():
    import subprocess

    root = DOCS.parent
    readme = (root / "README.md").read_text()
    first = next(line for line in readme.splitlines() if "mer-tag scan" in line and line.startswith("python3 -m venv"))
    out = first.split(" -o ", 1)[1].split()[0]
    assert not out.startswith("..")  # nor outside the repository, where it is nobody's
    ignored = subprocess.run(["git", "check-ignore", "-q", out], cwd=root, capture_output=True)
    if ignored.returncode == 128:  # not a git checkout (an unpacked release): nothing to ignore it
        pytest.skip("not a git checkout")
    assert ignored.returncode == 0, f"{out} is not ignored by git"
