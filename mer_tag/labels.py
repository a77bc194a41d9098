"""Label sets: the five MIREX mood clusters, Russell's four quadrants, valence, or any custom list; and label
maps, which relabel a dataset (valence from quadrants) without editing it.

A label set is data, not code: a model bundle stores its own (`names`, `adjectives`), so a model
trained on custom labels predicts custom labels without anything here changing.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class LabelSet:
    name: str
    names: tuple[str, ...]  # one short display name per class, in class-index order
    adjectives: tuple[tuple[str, ...], ...] = field(default=())  # AllMusic adjectives per class

    def __len__(self) -> int:
        return len(self.names)

    def index(self, label: str) -> int:
        """Class index of `label`, accepting the name, 'Cluster N', 'N' or an adjective."""
        key = label.strip().lower()
        for i, name in enumerate(self.names):  # a name's first word is its code: 'Q1' for 'Q1 positive/energetic'
            if key in (name.lower(), (name.lower().split() or [""])[0], f"cluster {i + 1}", str(i + 1)):
                return i
        for i, words in enumerate(self.adjectives):
            if key in (w.lower() for w in words):
                return i
        raise KeyError(f"unknown label {label!r} for label set {self.name!r} ({', '.join(self.names)})")

    def to_json(self) -> dict:
        return {"name": self.name, "names": list(self.names), "adjectives": [list(a) for a in self.adjectives]}

    @classmethod
    def from_json(cls, data: dict) -> LabelSet:
        return cls(data["name"], tuple(data["names"]), tuple(tuple(a) for a in data.get("adjectives", ())))


MIREX_ADJECTIVES = (
    ("passionate", "rousing", "confident", "boisterous", "rowdy"),
    ("rollicking", "cheerful", "fun", "sweet", "amiable/good-natured"),
    ("literate", "poignant", "wistful", "bittersweet", "autumnal", "brooding"),
    ("humorous", "silly", "campy", "quirky", "whimsical", "witty", "wry"),
    ("aggressive", "fiery", "tense/anxious", "intense", "volatile", "visceral"),
)

# Short names: one representative adjective per cluster, what a player shows as "Mood".
MIREX = LabelSet(
    "mirex5",
    ("Passionate", "Cheerful", "Wistful", "Humorous", "Aggressive"),
    MIREX_ADJECTIVES,
)

# Russell's valence-arousal quadrants, as the 4Q audio emotion dataset (Panda et al. 2018) labels its clips;
# the adjectives are that dataset's description of each quadrant.
QUADRANTS = LabelSet(
    "quadrants",
    ("Q1 positive/energetic", "Q2 negative/energetic", "Q3 negative/calm", "Q4 positive/calm"),
    (
        ("happy", "excited", "pleased"),
        ("angry", "tense", "anxious"),
        ("sad", "depressed", "bored"),
        ("calm", "relaxed", "serene"),
    ),
)

# What a result row's `quadrant_name` says, in plain words (Q1..Q4).
QUADRANT_WORDS = ("positive, energetic", "negative, energetic", "negative, calm", "positive, calm")

VALENCE2 = LabelSet("valence2", ("Positive", "Negative"))
AROUSAL2 = LabelSet("arousal2", ("Energetic", "Calm"))
VALENCE3 = LabelSet("valence3", ("Positive", "Neutral", "Negative"))

BUILTIN = {s.name: s for s in (MIREX, QUADRANTS, VALENCE2, AROUSAL2, VALENCE3)}


@dataclass(frozen=True)
class LabelMap:
    """Source label → target label name, and the label set the targets form. Source labels are matched as
    the source set's `index` matches them ('Q1', '1' or the full name)."""

    name: str
    pairs: tuple[tuple[str, str], ...]
    target: LabelSet

    def table(self, source: LabelSet) -> list[int]:
        """Target class index of every source class; KeyError names a source class the map leaves out."""
        by_source = {source.index(src): self.target.index(dst) for src, dst in self.pairs}
        missing = [name for i, name in enumerate(source.names) if i not in by_source]
        if missing:
            raise KeyError(f"label map {self.name!r} does not say what {', '.join(map(repr, missing))} become")
        return [by_source[i] for i in range(len(source))]


# Named maps (`--label-map valence`, or `[labels] map = "valence"` in a preset).
LABEL_MAPS = {
    "valence": LabelMap(
        "valence", (("Q1", "Positive"), ("Q4", "Positive"), ("Q2", "Negative"), ("Q3", "Negative")), VALENCE2
    ),
    "arousal": LabelMap(
        "arousal", (("Q1", "Energetic"), ("Q2", "Energetic"), ("Q3", "Calm"), ("Q4", "Calm")), AROUSAL2
    ),
}


def label_map(spec: str | dict) -> LabelMap:
    """A named map ('valence'), an inline one ('Q1=Positive,Q4=Positive,Q2=Negative,Q3=Negative') or a
    preset's table ({Q1 = "Positive", ...}). The targets form a built-in set when their names are exactly
    one's, else a custom set in the order they first appear. ValueError for anything else."""
    if isinstance(spec, str) and spec.strip().lower() in LABEL_MAPS:
        return LABEL_MAPS[spec.strip().lower()]
    if isinstance(spec, str):
        pairs = [part.split("=", 1) for part in spec.split(",") if part.strip()]
        if not pairs or any(len(p) != 2 or not p[0].strip() or not p[1].strip() for p in pairs):
            raise ValueError(
                f"label map {spec!r}: give a name ({', '.join(LABEL_MAPS)}) or SOURCE=TARGET pairs separated by commas"
            )
        spec = {src.strip(): dst.strip() for src, dst in pairs}
    if not isinstance(spec, dict) or not spec:
        raise ValueError(f"label map {spec!r}: expected a name or a table of source = target labels")
    targets = list(dict.fromkeys(str(v) for v in spec.values()))
    target = next((s for s in BUILTIN.values() if set(s.names) == set(targets)), None)
    name = ",".join(f"{k}={v}" for k, v in spec.items())
    mapping = tuple((str(k), str(v)) for k, v in spec.items())
    return LabelMap(name, mapping, target or LabelSet("custom", tuple(targets)))


def custom(names: list[str]) -> LabelSet:
    """A label set for labels found in a user's dataset, in sorted order."""
    return LabelSet("custom", tuple(sorted(names)))
