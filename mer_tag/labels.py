"""Label sets: the five MIREX mood clusters, the 3-class valence scheme, or any custom list.

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
        for i, name in enumerate(self.names):
            if key in (name.lower(), f"cluster {i + 1}", str(i + 1)):
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

VALENCE3 = LabelSet("valence3", ("Positive", "Neutral", "Negative"))

BUILTIN = {s.name: s for s in (MIREX, VALENCE3)}


def custom(names: list[str]) -> LabelSet:
    """A label set for labels found in a user's dataset, in sorted order."""
    return LabelSet("custom", tuple(sorted(names)))
