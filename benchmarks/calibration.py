"""Calibrated thresholds against the truth: on synthetic galleries of look-alikes, the FPIR
measured on fresh strangers at the calibrated threshold, against the target.

The impostor distribution is not normal: people come in clusters of look-alikes (cluster
sizes from a Zipf law, cosine to their cluster's centre set per cluster between 0.15 and 0.5),
so a stranger's best score is decided by the cluster they fall in. Strangers are drawn from the
same process (new people in the same clusters, or in none). Each gallery is built with
FaceDB.import_embeddings (one template a person, plus a second one for a fifth of them,
cosine about 0.70, so that genuine scores exist), calibrated with FaceDB.calibrate, and
searched with the strangers (FaceDB.search, the index identify uses): a stranger whose best
person reaches the threshold is a false positive.

    .venv/bin/python benchmarks/calibration.py [--sizes 1000 10000 100000] [--targets 0.01 0.001]
        [--strangers 20000] [--seeds 0 1 2] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import facedb


def lookalikes(
    rng: np.random.Generator, people: int, centres: np.ndarray, pull: np.ndarray, d: int = 512
) -> tuple[np.ndarray, np.ndarray]:
    """``people`` unit templates in the look-alike clusters (``centres``, each pulling its
    members to cosine ``pull``), a tenth of them in none; and each one's cluster (-1: none)."""
    sizes = 1.0 / np.arange(1, len(centres) + 1) ** 1.1
    cluster = rng.choice(len(centres), size=people, p=sizes / sizes.sum())
    cluster[rng.random(people) < 0.1] = -1
    noise = rng.standard_normal((people, d)) / np.sqrt(d)
    r = np.where(cluster >= 0, pull[cluster], 0.0)[:, None]
    rows = np.sqrt(r) * np.where(cluster[:, None] >= 0, centres[cluster], 0.0) + np.sqrt(1 - r) * noise
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32), cluster


def second_faces(rng: np.random.Generator, rows: np.ndarray, sigma: float = 0.045) -> np.ndarray:
    """Another template of the same people: the row plus Gaussian noise (cosine about 0.70)."""
    other = rows + rng.standard_normal(rows.shape).astype(np.float32) * sigma
    return (other / np.linalg.norm(other, axis=1, keepdims=True)).astype(np.float32)


def world(seed: int, people: int, d: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """The clusters of a synthetic world: unit centres and their pull, one cluster per 25 people."""
    rng = np.random.default_rng(seed)
    count = max(people // 25, 4)
    centres = rng.standard_normal((count, d))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    return centres.astype(np.float32), rng.uniform(0.15, 0.5, count)


def measure(
    folder: Path, people: int, targets: list[float], strangers: int, seed: int
) -> list[dict[str, float | int | str]]:
    """Builds one gallery and calibrates it for each target: measured FPIR against target."""
    rng = np.random.default_rng(seed + 1)
    centres, pull = world(seed, people)
    rows, _ = lookalikes(rng, people, centres, pull)
    fresh, _ = lookalikes(rng, strangers, centres, pull)
    results: list[dict[str, float | int | str]] = []
    with facedb.FaceDB(folder) as db:
        added = db.import_embeddings([f"p{i}" for i in range(people)], rows)
        some = added[: people // 5]
        with db.store.write() as s:
            second = second_faces(rng, rows[: len(some)])
            ids = db.store.add_faces(
                s, [p.id for p in some], db.facts.model_id, second, [facedb.store.FaceInfo()] * len(some)
            )
            db.store.bump(s, added=ids)
        db.sync_vectors()
        best = np.array([c[0].similarity if c else -1.0 for c in db.search(fresh, k=1)])
        for target in targets:
            started = time.perf_counter()
            cal = db.calibrate(target_fpir=target)
            seconds = time.perf_counter() - started
            measured = float((best >= cal.threshold).mean())
            results.append(
                {
                    "people": people,
                    "seed": seed,
                    "target_fpir": target,
                    "threshold": round(cal.threshold, 4),
                    "estimated_fpir": round(cal.estimated_fpir or 0.0, 5),
                    "measured_fpir": round(measured, 5),
                    "ratio": round(measured / target, 3),
                    "estimated_fnir": round(cal.estimated_fnir or 0.0, 4),
                    "source": cal.source,
                    "strangers": strangers,
                    "calibrate_s": round(seconds, 2),
                }
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--targets", type=float, nargs="+", default=[0.01, 0.001])
    parser.add_argument("--strangers", type=int, default=20_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="one gallery per seed")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows: list[dict[str, float | int | str]] = []
    for people in args.sizes:
        for seed in args.seeds:
            with tempfile.TemporaryDirectory() as tmp:
                rows += measure(Path(tmp) / "g", people, args.targets, args.strangers, seed)
                print(f"done: {people} people, seed {seed}", file=sys.stderr, flush=True)
    keys = list(rows[0])
    print("  ".join(f"{k:>14}" for k in keys))
    for row in rows:
        print("  ".join(f"{row[k]!s:>14}" for k in keys))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
