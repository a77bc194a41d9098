"""What a file's mood says: a template (a preset from presets/tag-templates.toml, or a text with {fields})
filled from the track's result row, and the numbers mer-tag may write beside it (`--extra-fields`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mer_tag.errors import MerTagError
from mer_tag.tags.outcome import TagError

MARKER = "MER_TAG_MODEL"  # a mood beside this field was written by mer-tag, so a later run may update it
TEMPLATE_FIELDS = (
    "name",
    "cluster",
    "adjectives",
    "confidence",
    "model",
    "runner_up_name",
    "quadrant",
    "quadrant_name",
    "valence",
    "arousal",
)
# Fields a row may lack: empty when the model that scanned had no valence–arousal head, absent from results
# older mer-tag versions wrote. A template that uses one fails for that file alone, saying why.
VALENCE_AROUSAL_FIELDS = ("quadrant", "quadrant_name", "valence", "arousal")
OPTIONAL_FIELDS = ("runner_up_name", *VALENCE_AROUSAL_FIELDS)
PRESETS = Path(__file__).parents[1] / "presets" / "tag-templates.toml"
# `mer-tag tag` and `scan --tag` leave tracks below this fused confidence untagged: about half of a library, the
# half the model is surest of (right 62–65 % of the time on unseen artists against 53 % for all; model card).
SURE_ENOUGH = 0.5
SAMPLE_ROW = {  # what --list-templates fills the presets from
    "cluster": 3,
    "cluster_name": "Wistful",
    "confidence": 0.613,
    "model": "default@0.4.0",
    "runner_up_name": "Passionate",
    "quadrant": 3,
    "quadrant_name": "negative, calm",
    "valence": 0.3012,  # P(Q1) + P(Q4)
    "arousal": 0.2347,  # P(Q1) + P(Q2)
}


class TemplateError(MerTagError):
    """A template no row can fill: an unknown preset or field, a bad format spec. The run stops before a file
    is touched (a row's own missing value is that file's TagError instead)."""


class Words(tuple):
    """Adjectives in a template: `{adjectives}` all, `{adjectives:3}` the first three, `{adjectives[0]}` one."""

    def __format__(self, spec: str) -> str:
        return ", ".join(self[: int(spec)] if spec else self)


def presets() -> dict[str, str]:
    """The named templates in presets/tag-templates.toml."""
    import tomllib

    return tomllib.loads(PRESETS.read_text(encoding="utf-8"))


def template_text(template: str) -> str:
    """The preset called `template`, or `template` itself when it has {fields}; checked by a trial render
    (TemplateError when it fails)."""
    named = presets()
    if template in named:
        template = named[template]
    elif "{" not in template:
        raise TemplateError(
            f"unknown template {template!r}: name a preset ({', '.join(named)}) or give a text with {{fields}}"
        )
    try:
        mood_text(template, SAMPLE_ROW)
    except KeyError as exc:
        fields = ", ".join(TEMPLATE_FIELDS)
        raise TemplateError(f"template {template!r}: unknown field {exc.args[0]!r} (fields: {fields})") from None
    except (IndexError, ValueError, AttributeError) as exc:
        raise TemplateError(f"template {template!r}: {exc}") from None
    return template


def mood_text(template: str, row: dict) -> str:
    """The mood one result row gets: `template` filled from the row. TagError when the template uses a
    field the row has no value for (valence–arousal from a model without it, say)."""
    cluster, name = int(row["cluster"]), str(row["cluster_name"])
    return template.format(
        name=name,
        cluster=cluster,
        adjectives=_adjectives(cluster, name),
        confidence=float(row["confidence"]),
        model=row.get("model") or "",
        **_optional_values(template, row),
    ).strip()


def _optional_values(template: str, row: dict) -> dict:
    """The optional fields `template` uses, from `row`; only those, so a row without them still fills the rest."""
    import string

    used = {re.split(r"[.\[]", field)[0] for _, field, _, _ in string.Formatter().parse(template) if field}
    values: dict[str, Any] = {}
    for name in OPTIONAL_FIELDS:
        if name not in used:
            continue
        value = row.get(name)
        if _missing(value):
            if name in VALENCE_AROUSAL_FIELDS:
                raise TagError(f"no {name} in this track's row: the model that scanned it has no valence–arousal")
            raise TagError(f"no {name} in this track's row: results from an older mer-tag (rescan to get it)")
        values[name] = _typed(name, value)
    return values


def _missing(value: Any) -> bool:
    """A row's value that is not there: null, or NaN (a Parquet float column's empty)."""
    return value is None or (isinstance(value, float) and value != value)


def _typed(name: str, value: Any) -> Any:
    """A row's value as the template expects it: CSV and hand-made files may spell numbers as text."""
    try:
        if name == "quadrant":
            return int(float(value))
        if name in ("valence", "arousal"):
            return float(value)
    except (TypeError, ValueError):
        raise TagError(f"{name} {value!r} in this track's row is not a number") from None
    return str(value)


def _adjectives(cluster: int, name: str) -> Words:
    from mer_tag.labels import BUILTIN

    for labels in BUILTIN.values():
        if labels.adjectives and 0 < cluster <= len(labels) and labels.names[cluster - 1] == name:
            return Words(labels.adjectives[cluster - 1])
    return Words((name.lower(),))  # a custom label set: its name is the only word we know


def own_fields(row: dict) -> dict[str, str | None]:
    """Our own fields beside the mood: the numbers behind it, and the model (also our MARKER). Valence,
    arousal and quadrant the row has none of are None: removed, should an earlier run have written them,
    so a file never shows one model's mood beside another model's valence."""
    fields: dict[str, str | None] = {
        "MER_TAG_CLUSTER": str(int(row["cluster"])),
        "MER_TAG_CONFIDENCE": f"{row['confidence']:.4f}",
    }
    for column, value in row.items():
        if column.startswith("prob_cluster_") and value is not None:
            fields[f"MER_TAG_PROB_{column.removeprefix('prob_cluster_')}"] = f"{value:.4f}"
    for column, spelling in (("valence", "{:.4f}"), ("arousal", "{:.4f}"), ("quadrant", "{:d}")):
        value = row.get(column)
        fields[f"MER_TAG_{column.upper()}"] = None if _missing(value) else spelling.format(_typed(column, value))
    fields[MARKER] = str(row.get("model") or "unknown")
    return fields
