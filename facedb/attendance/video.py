"""Reading a video source with OpenCV: opening a file, camera index or stream URL; sampling
a file's frames by their position; a live source's reader thread, which keeps only the
newest frame for a slower consumer."""

from __future__ import annotations

import threading
import time
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from facedb.errors import ConfigError
from facedb.extras import load

if TYPE_CHECKING:
    from facedb.attendance.watcher import Watcher

__all__ = ["LatestFrame"]


class LatestFrame:
    """A one-frame buffer between a reader thread and a slower consumer: :meth:`put` replaces
    the frame not yet taken (counting it in ``skipped``), :meth:`take` waits for a frame and
    returns the newest one, or None once the reader has ended and nothing is left."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: NDArray[np.uint8] | None = None
        self._ended = False
        self.skipped = 0
        self.error: BaseException | None = None

    def put(self, frame: NDArray[np.uint8]) -> None:
        """Offers a new frame; an untaken older one is dropped and counted."""
        with self._cond:
            if self._frame is not None:
                self.skipped += 1
            self._frame = frame
            self._cond.notify()

    def end(self, error: BaseException | None = None) -> None:
        """The reader has no more frames (or failed with ``error``)."""
        with self._cond:
            self._ended = True
            self.error = error
            self._cond.notify_all()

    @property
    def ended(self) -> bool:
        """Whether the reader has ended."""
        return self._ended

    def take(self, timeout: float | None = None) -> NDArray[np.uint8] | None:
        """The newest frame (waiting for one); None when the reader ended, or on timeout."""
        with self._cond:
            self._cond.wait_for(lambda: self._frame is not None or self._ended, timeout)
            frame, self._frame = self._frame, None
            return frame


def _open(source: str, cv2: Any) -> tuple[Any, bool]:
    """The opened capture of a source, and whether it is live (a camera or a stream)."""
    target: int | str = int(source) if source.isdigit() else source
    # OpenCV logs its own warnings for a source it cannot open (one per backend it tries):
    # facedb's error below says it once, in facedb's words.
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        capture = cv2.VideoCapture(target)
    finally:
        cv2.utils.logging.setLogLevel(level)
    if not capture.isOpened():
        what = (
            f"camera {target}: no such camera, or it is in use"
            if isinstance(target, int)
            else "not a readable video"
        )
        raise ConfigError(f"cannot open video source {source!r} ({what})")
    return capture, isinstance(target, int) or "://" in source


def _live_frames(
    capture: Any,
    rate: float,
    watcher: Watcher | None,
    pace: float | None = None,
    until: float | None = None,
) -> Generator[tuple[float | None, NDArray[np.uint8]], None, None]:
    """A live source's frames: a reader thread reads every frame as it comes and keeps the
    newest; the consumer always gets the newest one, at most ``rate`` a second. Frames it
    never got are counted in ``watcher.skipped``. ``pace`` (seconds per frame) makes a file
    play like a live source, for tests. ``until`` (a time.monotonic() deadline) ends it even
    while a stalled source sends nothing."""
    buffer = LatestFrame()
    stop = threading.Event()

    def read() -> None:
        try:
            while not stop.is_set():
                ok, frame = capture.read()
                if not ok:
                    break
                buffer.put(np.asarray(frame, dtype=np.uint8))
                if pace:
                    time.sleep(pace)
        except BaseException as e:  # pragma: no cover - a driver failing mid-stream
            buffer.end(e)
            return
        buffer.end()

    reader = threading.Thread(target=read, name="facedb-watch-reader", daemon=True)
    reader.start()
    last = 0.0
    try:
        while True:
            wait = last + 1.0 / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            frame = buffer.take(timeout=None if until is None else 0.25)
            if watcher is not None:
                watcher.skipped = buffer.skipped
            if frame is None and not buffer.ended:  # waited for a stalled source
                if until is not None and time.monotonic() >= until:
                    return
                continue
            if frame is None:
                if buffer.error is not None:
                    raise ConfigError(f"the video source failed: {buffer.error}")
                return
            last = time.monotonic()
            yield None, frame
    finally:
        stop.set()
        reader.join(timeout=5)
        if watcher is not None:
            watcher.skipped = buffer.skipped


def _frames(
    source: str, rate: float, watcher: Watcher | None = None, until: float | None = None
) -> Generator[tuple[float | None, NDArray[np.uint8]], None, None]:
    """Sampled frames of a video file, camera index or stream URL: (seconds into a file, or
    None for a live source; the BGR frame)."""
    cv2 = load("cv2", "video", "watching a video or camera")
    capture, live = _open(source, cv2)
    fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
    try:
        if live:
            yield from _live_frames(capture, rate, watcher, until=until)
            return
        index = 0
        next_at = 0.0
        while True:
            if not capture.grab():
                return
            position = index / fps if fps > 0 else capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            index += 1
            if position + 1e-6 < next_at:
                continue
            next_at += 1.0 / rate
            ok, frame = capture.retrieve()
            if ok:
                yield position, np.asarray(frame, dtype=np.uint8)
    finally:
        capture.release()
