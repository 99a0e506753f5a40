"""The watch loop: a video source's sampled frames through a watcher, until the file ends,
the duration is up or Ctrl-C."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from facedb.attendance.reports import Sighting
from facedb.attendance.settings import WatchSettings
from facedb.attendance.video import _frames
from facedb.attendance.watcher import Watcher
from facedb.errors import ConfigError
from facedb.gallery import FaceDB

__all__ = ["watch"]


def watch(
    db: FaceDB,
    source: str,
    settings: WatchSettings | None = None,
    *,
    start: datetime | None = None,
    duration: float | None = None,
    watcher: Watcher | None = None,
) -> list[Sighting]:
    """Watches a video file (to its end), a camera index or a stream URL (until ``duration``
    seconds or Ctrl-C) and logs visits; returns the visits started. A live source is read
    by a thread that keeps only the newest frame; pass a ``watcher`` to read how many frames
    were skipped (:attr:`Watcher.skipped`) and how many were processed; its settings are
    the ones in force (``settings`` may be left out, or must be the same).

    Raises:
        ConfigError: ``settings`` and the watcher's settings differ.
    """
    if watcher is not None:
        if settings is not None and settings != watcher.settings:
            raise ConfigError(
                "watch was given settings and a watcher with other settings: pass the settings "
                "to the Watcher only"
            )
        settings = watcher.settings
    settings = settings or WatchSettings()
    start = start or datetime.now(UTC)
    watcher = watcher or Watcher(db, source, settings)
    began = time.monotonic()
    frames = _frames(source, settings.rate, watcher, None if duration is None else began + duration)
    try:
        for position, frame in frames:
            at = start + timedelta(seconds=position) if position is not None else datetime.now(UTC)
            if settings.track:
                watcher.observe_frame(at, frame)
            else:
                watcher.observe(at, db.identify(frame))
            if duration is not None and time.monotonic() - began >= duration:
                break
    finally:
        frames.close()
        watcher.close()
    return watcher.logged
