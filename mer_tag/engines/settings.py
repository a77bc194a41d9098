"""What a scan asks of any engine (local or Ray): one settings object, so the engines share one argument list."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mer_tag.bundle import Bundle
    from mer_tag.features import AudioConfig, MidiConfig


def check_jobs(jobs: int) -> int:
    """`jobs`, or ValueError when it is no number of decode processes to start (a typo's `-j 10000`)."""
    from mer_tag._process import MAX_JOBS

    if not 0 <= jobs <= MAX_JOBS:
        raise ValueError(f"jobs {jobs}: use 0 to {MAX_JOBS} decode processes")
    return jobs


@dataclass(frozen=True)
class EngineSettings:
    """What a scan asks of any engine: the model, and how its tracks are read and its rows filled."""

    model: str | Path = "default"  # a shipped name or a bundle folder
    jobs: int = 2  # local: decode processes (0: decode in this process); ray: CPUs of a cluster it starts
    timeline: bool = False  # a mood per chunk in each row's `timeline`
    precision: str = "auto"  # of the frozen encoders: auto, fp32 or bf16 (models.precision)
    chunk_hop: float | None = None  # seconds between chunk starts; None: the model's own

    def __post_init__(self) -> None:
        check_jobs(self.jobs)

    def read(self) -> tuple[Bundle, AudioConfig, MidiConfig]:
        """The model's card (no torch, no weights) and the feature settings tracks are prepared with (the
        card's, with `chunk_hop` applied): what every engine reads once when it is made."""
        import dataclasses

        from mer_tag import bundle as bundle_io

        card = bundle_io.read_card(self.model)
        audio = card.audio_config
        if self.chunk_hop:
            audio = dataclasses.replace(audio, chunk_hop_seconds=float(self.chunk_hop))
        if audio.tonal and "dissonance" not in card.card.get("models", {}).get("quadrant", {}).get("inputs", ()):
            # No head reads the roughness: its peak pairs would cost every track about 2 % of its decode worker.
            audio = dataclasses.replace(audio, dissonance=False)
        return card, audio, card.midi_config
