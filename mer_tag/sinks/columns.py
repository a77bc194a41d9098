"""The columns of a result row: the one table every writer, reader and engine takes them from (docs/output.md)."""

from __future__ import annotations

PROB = "prob_cluster_{k}"  # one column per class, k = 1..K
PROB_QUADRANT = "prob_quadrant_{k}"  # one column per valence–arousal quadrant, k = 1..4
N_QUADRANTS = 4  # Q1 positive/energetic, Q2 negative/energetic, Q3 negative/calm, Q4 positive/calm

# (name, type) in output order; `timeline` only with --timeline.
TABLE = (
    ("path", "str"),
    ("status", "str"),
    ("error", "str"),
    ("notes", "str"),
    ("size", "int"),
    ("mtime", "float"),
    ("title", "str"),
    ("artist", "str"),
    ("album", "str"),
    ("duration_s", "float"),
    ("cluster", "int"),
    ("cluster_name", "str"),
    ("confidence", "float"),
    (PROB, "float"),
    ("runner_up", "int"),  # the second most likely cluster, and its probability
    ("runner_up_name", "str"),
    ("runner_up_confidence", "float"),
    ("quadrant", "int"),  # empty when the model has no valence–arousal head
    ("quadrant_name", "str"),
    (PROB_QUADRANT, "float"),
    ("valence", "float"),  # 0–1: P(Q1) + P(Q4), how likely the song is positive
    ("arousal", "float"),  # 0–1: P(Q1) + P(Q2), how likely the song is energetic
    ("audio_cluster", "int"),
    ("lyrics_cluster", "int"),
    ("midi_cluster", "int"),
    ("lyrics_source", "str"),
    ("lyrics_path", "str"),
    ("midi_path", "str"),
    ("model", "str"),
    ("timeline", "str"),
)
TYPES = dict(TABLE)


def columns(n_classes: int, timeline: bool) -> list[str]:
    """Output columns, in order, for a model of `n_classes` classes."""
    names = []
    for name, _ in TABLE:
        if name == PROB:
            names += [PROB.format(k=k + 1) for k in range(n_classes)]
        elif name == PROB_QUADRANT:
            names += [PROB_QUADRANT.format(k=k + 1) for k in range(N_QUADRANTS)]
        elif name != "timeline" or timeline:
            names.append(name)
    return names


def class_number(name: str) -> int | None:
    """k of a `prob_cluster_k` column; None for any other name."""
    prefix = PROB.split("{", 1)[0]
    rest = name[len(prefix) :] if name.startswith(prefix) else ""
    return int(rest) if rest.isdigit() else None


def column_type(name: str) -> str | None:
    """'str', 'int' or 'float' for a result column; None for a column not in the table."""
    if name.startswith("prob_cluster_"):
        return TYPES[PROB]
    if name.startswith("prob_quadrant_"):
        return TYPES[PROB_QUADRANT]
    return TYPES.get(name)


def polars_schema(names: list[str] | tuple[str, ...]) -> dict:
    """Polars types for `names`, so every Parquet file has the same schema (a part whose rows are all errors
    must not make `cluster` a null column); a column not in the table is text."""
    import polars as pl

    types = {"str": pl.String, "int": pl.Int64, "float": pl.Float64}
    return {name: types[column_type(name) or "str"] for name in names}
