"""A watch's settings: how it samples frames and how many of them vote a visit in."""

from __future__ import annotations

from dataclasses import dataclass

from facedb.errors import ConfigError

__all__ = ["WatchSettings"]


@dataclass(frozen=True, slots=True)
class WatchSettings:
    """How a watch samples and votes.

    Attributes:
        rate: frames sampled per second of video.
        votes: samples (of the last ``window``) a face must be recognised in to be logged.
        window: how many recent samples the vote looks at.
        cooldown: seconds without a sighting after which a new visit starts; at least the
            vote's span (``window / rate`` seconds), or every sample would start a visit.
        track: follow faces between samples (detector only) and run the recognizer on a
            track's face only when it starts, when its face gets markedly better, and every
            ``refresh`` seconds; False identifies every face of every sample (the old way).
        refresh: seconds of video between two recognitions of a tracked face.
        lost: samples a track is kept without a detection before it ends.
    """

    rate: float = 5.0
    votes: int = 3
    window: int = 5
    cooldown: float = 600.0
    track: bool = True
    refresh: float = 2.0
    lost: int = 5

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ConfigError(f"rate must be positive, got {self.rate}")
        if not 1 <= self.votes <= self.window:
            raise ConfigError(f"votes must be between 1 and window ({self.window}), got {self.votes}")
        if not self.refresh > 0:
            raise ConfigError(f"refresh must be positive, got {self.refresh}")
        if self.lost < 0:
            raise ConfigError(f"lost must be at least 0, got {self.lost}")
        span = self.window / self.rate
        if not self.cooldown >= span:
            raise ConfigError(
                f"cooldown must be at least the vote's span, window / rate = {span:g} s, got "
                f"{self.cooldown:g}: a shorter one makes every sampled frame a new visit"
            )
