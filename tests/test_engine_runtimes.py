"""The runtimes a model may run on (issue 28): OpenVINO gives ONNX Runtime's answers on real
photos, the automatic choice is measured once and says why, and a wrong or missing runtime is
a clear error."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import facedb
from facedb.errors import ConfigError, MissingExtra, ModelError

from .helpers import missing, run_cli
from .test_engine import photo_path

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def openvino_installed() -> None:
    if importlib.util.find_spec("openvino") is None:
        missing("the openvino wheel is not installed (pip install 'facedb-rs[openvino]')")


@pytest.fixture(scope="module")
def on_onnxruntime() -> facedb.FaceEngine:
    return facedb.FaceEngine(runtime="onnxruntime")


@pytest.fixture(scope="module")
def on_openvino(openvino_installed: None) -> facedb.FaceEngine:
    return facedb.FaceEngine(runtime="openvino")


def test_openvino_gives_onnxruntime_answers_on_every_photo(
    on_onnxruntime: facedb.FaceEngine,
    on_openvino: facedb.FaceEngine,
    reference: dict[str, Any],
    faces_dir: Path,
    wheel_photos: Path,
) -> None:
    """Both models forced onto OpenVINO: the same faces, boxes and landmarks within 0.1 px and
    templates at cosine >= 0.9999 of ONNX Runtime's on all 29 parity photos (so the reference
    parity of test_engine.py holds on both runtimes)."""
    assert on_openvino.runtimes["detector"]["runtime"] == "openvino"
    assert on_openvino.runtimes["recognizer"]["runtime"] == "openvino"
    assert on_onnxruntime.runtimes["recognizer"]["runtime"] == "onnxruntime"
    faces_seen, lowest, farthest = 0, 1.0, 0.0
    for key in reference["images"]:
        path = photo_path(key, faces_dir, wheel_photos)
        want, got = on_onnxruntime.detect(path), on_openvino.detect(path)
        assert len(got) == len(want), key
        for a, b in zip(want, got, strict=True):
            farthest = max(
                farthest,
                float(np.abs(a.bbox - b.bbox).max()),
                float(np.abs(a.landmarks - b.landmarks).max()),
            )
            lowest = min(lowest, facedb.similarity(a.embedding, b.embedding))
            faces_seen += 1
    assert faces_seen >= 50
    assert farthest <= 0.1, farthest
    assert lowest >= 0.9999, lowest


def test_one_model_per_runtime(
    on_onnxruntime: facedb.FaceEngine, openvino_installed: None, wheel_photos: Path
):
    """The recognizer on OpenVINO, the detector on ONNX Runtime, given as a mapping."""
    split = facedb.FaceEngine(runtime={"detector": "onnxruntime", "recognizer": "openvino"})
    assert {m: r["runtime"] for m, r in split.runtimes.items()} == {
        "detector": "onnxruntime",
        "recognizer": "openvino",
    }
    assert "asked for" in split.runtimes["recognizer"]["reason"]
    photo = wheel_photos / "players.jpg"
    a, b = on_onnxruntime.embedding(photo), split.embedding(photo)
    assert facedb.similarity(a, b) >= 0.9999


def test_the_automatic_choice_is_measured_once_and_says_why(openvino_installed: None, tmp_path: Path):
    """First use measures both runtimes on the photos beside the models and caches the verdict
    by model hash and CPU; the next engine reads it. Whatever is chosen, the reason gives the
    figures and the answers' agreement."""
    first = facedb.FaceEngine(cache_dir=tmp_path)
    cache = tmp_path / "runtimes.tsv"
    assert cache.is_file()
    lines = cache.read_text().splitlines()
    assert [line.split("|")[0] for line in lines] == ["detector", "recognizer"]
    for model, chosen in first.runtimes.items():
        assert chosen["runtime"] in ("onnxruntime", "openvino"), model
        assert " ms " in chosen["reason"] and "answers match" in chosen["reason"], chosen
    second = facedb.FaceEngine(cache_dir=tmp_path)
    for model, chosen in second.runtimes.items():
        assert chosen["runtime"] == first.runtimes[model]["runtime"]
        assert "cached" in chosen["reason"], chosen
    # A choice cached for this model and CPU is the one used, whatever it says.
    forced = [line.split("\t") for line in lines]
    cache.write_text("".join(f"{k}\tonnxruntime\tplanted\n" for k, _, _ in forced))
    third = facedb.FaceEngine(cache_dir=tmp_path)
    assert {r["runtime"] for r in third.runtimes.values()} == {"onnxruntime"}
    assert third.runtimes["recognizer"]["reason"].startswith("planted")


@pytest.mark.parametrize(
    ("runtime", "named"),
    [
        ("tensorrt", "'tensorrt'"),
        ({"detector": "cuda"}, "cuda"),
        ({"embedder": "openvino"}, "embedder"),
        ("detector", "detector"),
        (3, "3"),
    ],
)
def test_a_bad_runtime_is_a_config_error_naming_it(runtime: Any, named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        facedb.FaceEngine(runtime=runtime)
    assert named.strip("'") in str(caught.value)
    assert "onnxruntime" in str(caught.value)  # says what is accepted


def test_openvino_without_its_library(openvino_installed: None, tmp_path: Path) -> None:
    """Forced: a ModelError naming the library; automatic: ONNX Runtime, with the reason."""
    bad = tmp_path / "libopenvino_c.so.0"
    with pytest.raises(ModelError, match=str(bad)):
        facedb.FaceEngine(runtime="openvino", openvino_library=bad)
    fallback = facedb.FaceEngine(openvino_library=bad, cache_dir=tmp_path)
    for chosen in fallback.runtimes.values():
        assert chosen["runtime"] == "onnxruntime"
        assert "OpenVINO is not available" in chosen["reason"] and str(bad) in chosen["reason"]
    assert not (tmp_path / "runtimes.tsv").exists()  # nothing measured, nothing cached


def test_openvino_without_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)  # as if the wheel were not installed
    with pytest.raises(MissingExtra, match=r"facedb-rs\[openvino\]"):
        facedb.FaceEngine(runtime="openvino")


def test_the_command_line_takes_a_runtime_and_stats_tell_it(tmp_path: Path) -> None:
    db = tmp_path / "g"
    made = run_cli("--runtime", "onnxruntime", "enroll", "--help", db=db)
    assert made.returncode == 0, made.stderr
    db.mkdir()
    new = run_cli("--runtime", "onnxruntime", "stats", "--json", db=db)
    if new.returncode != 0:  # stats needs a gallery: make one through the library
        with facedb.FaceDB(db):
            pass
        new = run_cli("--runtime", "onnxruntime", "stats", "--json", db=db)
    assert new.returncode == 0, new.stderr
    runtimes = json.loads(new.stdout)["runtimes"]
    assert runtimes["detector"]["runtime"] == runtimes["recognizer"]["runtime"] == "onnxruntime"
    assert "runtime=onnxruntime was asked for" in runtimes["recognizer"]["reason"]
    wrong = run_cli("stats", "--runtime", "tensorrt", db=db)
    assert wrong.returncode == ConfigError.exit_code
    assert wrong.stderr.startswith("facedb: error:") and "tensorrt" in wrong.stderr
    assert len(wrong.stderr.strip().splitlines()) == 1
