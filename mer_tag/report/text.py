"""The summary as Markdown: the same numbers as the HTML page, for a terminal, an issue or a wiki.

Tags are strangers' text: Markdown punctuation in a value is backslash-escaped, `<` and `>` too (so a
renderer that passes HTML through shows a tag as text) and `&` where it would start an entity, so a title
cannot open a link, a table cell, code or HTML, and reads the same in a terminal as rendered ("Mel & Tim",
never "Mel &amp; Tim").
"""

from __future__ import annotations

import re

BAR_WIDTH = 24
MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\]|~#<>])")
ENTITY_START = re.compile(r"&(?=#?\w+;)")  # "&amp;" renders as "&": kept as text by a backslash
LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


def escape(value) -> str:
    """One line of inert Markdown text for any tag value."""
    text = LINE_BREAKS.sub(" ", "" if value is None else str(value))
    return ENTITY_START.sub(r"\\&", MARKDOWN_PUNCTUATION.sub(r"\\\1", text))


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """'1 track', '0 tracks', '1,234 tracks'; `nouns` for a plural that is not noun + 's'."""
    return f"{count:,} {noun if count == 1 else nouns or noun + 's'}"


def render_markdown(summary: dict, *, title: str = "Library moods") -> str:
    names = [c["name"] for c in summary["classes"]]
    sections = [
        header(summary, title),
        overview(summary["totals"], summary["confidence"]),
        distribution(summary["distribution"], names),
        grouped("artist", summary["by_artist"], names),
        grouped("album", summary["by_album"], names),
        grouped("folder", summary["by_folder"], names),
        confidence(summary["confidence"]),
        valence_arousal(summary.get("valence_arousal")),
        timelines(summary["timelines"], names),
        top_tracks(summary["top_tracks"]),
        failures(summary["errors"]),
    ]
    return "\n\n".join(section for section in sections if section) + "\n"


def header(summary: dict, title: str) -> str:
    lines = [f"# {escape(title)}", ""]
    if summary["library_root"]:
        lines.append(f"Library: {escape(summary['library_root'])}  ")
    if summary["models"]:
        lines.append(f"Model: {escape(', '.join(summary['models']))}")
    return "\n".join(lines).rstrip()


def table(head: list[str], rows: list[list], align: str) -> str:
    """A Markdown table; `align` has one letter per column, l or r."""
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = [head, rule, *[[str(cell) for cell in row] for row in rows]]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "0.0%"


def bar(part: int, whole: int) -> str:
    return "\u2588" * round(BAR_WIDTH * part / whole) if whole else ""


def number(value, digits: int = 2) -> str:
    return "\u2013" if value is None else f"{value:.{digits}f}"


def overview(totals: dict, confidence_stats: dict) -> str:
    predicted = totals["predicted"]
    rows = [
        ["Tracks", f"{totals['tracks']:,}"],
        ["Predicted", f"{predicted:,}"],
        ["Failed", f"{totals['errors']:,}"],
        [
            "With lyrics",
            f"{totals['with_lyrics']:,} ({share(totals['with_lyrics'], predicted)}): "
            f"sidecar {totals['lyrics_sidecar']:,}, embedded {totals['lyrics_embedded']:,}",
        ],
        ["With MIDI", f"{totals['with_midi']:,} ({share(totals['with_midi'], predicted)})"],
        ["With timeline", f"{totals['with_timeline']:,}"],
        ["Mean / median confidence", f"{number(totals['mean_confidence'])} / {number(confidence_stats['median'])}"],
        ["Playing time", f"{(totals['duration_s'] or 0) / 3600:.1f} h"],
    ]
    return "## Overview\n\n" + table(["", "Tracks"], rows, "lr")


def distribution(rows: list[dict], names: list[str]) -> str:
    total = sum(r["count"] for r in rows)
    body = [
        [
            escape(names[r["cluster"] - 1]),
            f"{r['count']:,}",
            share(r["count"], total),
            number(r["mean_confidence"]),
            bar(r["count"], max(x["count"] for x in rows)),
        ]
        for r in rows
    ]
    return "## Mood distribution\n\n" + table(["Mood", "Tracks", "Share", "Mean confidence", ""], body, "lrrrl")


def grouped(label: str, group: dict, names: list[str]) -> str:
    if not group["rows"]:
        return ""
    body = []
    for row in group["rows"]:
        name = escape(row["name"]) + (f" ({escape(row['detail'])})" if row["detail"] else "")
        top = max(range(len(names)), key=lambda c: row["counts"][c])
        body.append([name, f"{row['total']:,}", *(f"{n:,}" for n in row["counts"]), escape(names[top])])
    head = [label.capitalize(), "Tracks", *(escape(n) for n in names), "Top mood"]
    shown = len(group["rows"])
    which = f"all {shown:,}" if shown == group["groups"] else f"{shown:,} largest of {group['groups']:,}"
    title = f"## Mood by {label} ({which if shown > 1 else plural(shown, label)})"
    return title + "\n\n" + table(head, body, "lr" + "r" * len(names) + "l")


def confidence(stats: dict) -> str:
    totals = [sum(row) for row in stats["counts"]]
    width = stats["bin_width"]
    body = [
        [f"{i * width:.2f}\u2013{(i + 1) * width:.2f}", f"{n:,}", bar(n, max(totals))]
        for i, n in enumerate(totals)
        if n
    ]
    return "## Confidence\n\n" + table(["Confidence", "Tracks", ""], body, "lrl") if body else ""


def valence_arousal(section: dict | None) -> str:
    """Tracks per quadrant and the mean valence and arousal; nothing for results without them."""
    if not section:
        return ""
    body = [
        [f"Q{q['quadrant']} {escape(q['name'])}", f"{q['count']:,}", share(q["count"], section["tracks"])]
        + [bar(q["count"], max(x["count"] for x in section["quadrants"]))]
        for q in section["quadrants"]
    ]
    lines = ["## Valence and arousal", "", table(["Quadrant", "Tracks", "Share", ""], body, "lrrl")]
    if section["on_plane"]:
        lines += [
            "",
            f"Mean valence {number(section['mean_valence'])}, mean arousal {number(section['mean_arousal'])} "
            f"over {plural(section['on_plane'], 'track')} (0 to 1: valence, how likely a track is positive; "
            "arousal, how likely it is energetic).",
        ]
    if section["without"]:
        lines += ["", f"{plural(section['without'], 'predicted track')} had no valence–arousal from its model."]
    return "\n".join(lines)


def clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}:{secs:02d}"


def timelines(section: dict, names: list[str]) -> str:
    if not section["tracks"]:
        return ""
    lines = [f"## Mood over time in long tracks ({plural(len(section['tracks']), 'track')})", ""]

    def name(cluster: int) -> str:  # a cluster the labels don't name shows as its number
        return names[cluster - 1] if 0 < cluster <= len(names) else str(cluster)

    for track in section["tracks"]:
        moods = ", ".join(
            f"{clock(s['start_s'])} {escape(name(s['cluster']))}" for s in merged_segments(track["segments"])
        )
        by = f" \u2013 {escape(track['artist'])}" if track["artist"] else ""
        lines.append(f"- **{escape(track['title'])}**{by} ({clock(track['duration_s'] or 0)}): {moods}")
    return "\n".join(lines)


def merged_segments(segments: list[dict]) -> list[dict]:
    """Adjacent chunks of one mood read as one span."""
    merged: list[dict] = []
    for segment in segments:
        if not merged or merged[-1]["cluster"] != segment["cluster"]:
            merged.append(segment)
    return merged


def top_tracks(moods: list[dict]) -> str:
    lines = ["## Top tracks per mood"]
    for mood in moods:
        lines += ["", f"### {escape(mood['name'])}", ""]
        lines += [
            f"{rank}. {escape(t['title'])}"
            + (f" \u2013 {escape(t['artist'])}" if t["artist"] else "")
            + f" ({number(t['confidence'])})"
            for rank, t in enumerate(mood["tracks"], 1)
        ] or ["No tracks."]
    return "\n".join(lines)


def failures(errors: dict) -> str:
    if not errors["count"]:
        return "## Failures\n\nNone: every file was read and scored."
    reasons = table(["Error", "Files"], [[escape(r["error"]), f"{r['count']:,}"] for r in errors["reasons"]], "lr")
    files = table(["File", "Error"], [[escape(f["path"]), escape(f["error"])] for f in errors["failures"]], "ll")
    listed = len(errors["failures"])
    shown = f"The first {plural(listed, 'file')} of {errors['count']:,} are listed."
    more = f"\n\n{shown}" if listed < errors["count"] else ""
    return f"## Failures ({plural(errors['count'], 'file')})\n\n{reasons}\n\n{files}{more}"
