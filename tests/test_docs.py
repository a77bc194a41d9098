"""The docs say what the code and the model card say: names, numbers and columns a reader will act on."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mer_tag import bundle as bundle_io
from mer_tag.cli import main
from mer_tag.labels import MIREX

ROOT = Path(__file__).parents[1]
DOCS = ROOT / "docs"


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


def _imports_by_room() -> dict[str, set[str]]:
    """room → the other rooms of mer_tag it imports (every import statement, top of a file or inside a
    function); a room is a subpackage (`engines/`) or a top-level module (`scan`)."""
    import ast

    package = ROOT / "mer_tag"

    def room(module: str) -> str | None:
        parts = module.split(".")
        if len(parts) < 2 or parts[0] != "mer_tag" or parts[1].startswith("__"):
            return None
        return parts[1] + "/" if (package / parts[1]).is_dir() else parts[1]

    graph: dict[str, set[str]] = {}
    for file in package.rglob("*.py"):
        module = ".".join(file.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        here = room(module)
        if here is None:
            continue
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names if node.module == "mer_tag"]
            else:
                continue
            graph.setdefault(here, set()).update(r for r in map(room, names) if r and r != here)
    return graph


def test_who_imports_whom_is_drawn_from_the_imports():
    """docs/architecture.md's table, room by room, is exactly what the code imports."""
    block = (ROOT / "docs/architecture.md").read_text(encoding="utf-8").split("## Who imports whom")[1]
    block = block.split("```")[1]
    drawn: dict[str, set[str]] = {}
    rooms: list[str] = []
    for line in block.splitlines():
        if "→" in line:
            left, right = line.split("→")
            rooms = [r.strip() for r in left.split(",")]
            line = right
        targets = {t.strip() for t in line.split(",") if t.strip()} - {"nothing of mer-tag's"}
        for r in rooms:
            drawn.setdefault(r, set()).update(targets)
    imports = {room: found for room, found in _imports_by_room().items() if found}
    assert {r: t for r, t in drawn.items() if t} == imports
