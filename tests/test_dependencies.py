"""The declared dependencies are exactly what the package imports: nothing installed for nothing, nothing
imported that a fresh `pip install mer-tag` would lack."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mer_tag"
BEETS_PLUGIN = ROOT / "beetsplug"  # shipped beside the package; needs `pip install 'mer-tag[beets]'`


def imported_modules(folder: Path = PACKAGE) -> set[str]:
    """Top-level names of every module `folder` (mer_tag/) imports, at the top of a file or inside a function,
    and the packages it finds by name (models/lyrics.py finds the encoder's package with importlib)."""
    from mer_tag.models.lyrics import ENCODER_PACKAGE

    names = {ENCODER_PACKAGE} if folder == PACKAGE else set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != "mer_tag"}


def declared(extras: tuple[str, ...] = ()) -> set[str]:
    """Distribution names in pyproject.toml's dependencies (and the given extras), normalised."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    specs = list(project["dependencies"])
    for extra in extras:
        specs += project["optional-dependencies"][extra]
    return {normalise(re.split(r"[<>=!~ \[;]", spec, maxsplit=1)[0]) for spec in specs}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def distributions_of(modules: set[str]) -> dict[str, set[str]]:
    providers = packages_distributions()
    return {m: {normalise(d) for d in providers.get(m, [])} for m in modules}


def test_every_import_of_the_package_is_declared():
    runtime = declared(("ray",))  # the Ray engine imports ray only when asked for (`pip install 'mer-tag[ray]'`)
    missing = {m: d for m, d in distributions_of(imported_modules()).items() if not d & runtime}
    assert not missing, f"imported by mer_tag/ but not declared in pyproject.toml: {missing}"


def test_the_beets_plugin_imports_only_what_the_package_and_its_extra_declare():
    runtime = declared(("beets",))
    missing = {m: d for m, d in distributions_of(imported_modules(BEETS_PLUGIN)).items() if not d & runtime}
    assert not missing, f"imported by beetsplug/ but not declared in pyproject.toml: {missing}"


def test_every_declared_dependency_is_imported_by_the_package():
    provided = set().union(*distributions_of(imported_modules()).values())
    unused = declared() - provided
    assert not unused, f"declared in pyproject.toml but never imported by mer_tag/: {sorted(unused)}"
