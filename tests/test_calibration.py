"""Calibration: the tail fit and thresholds on known distributions, confidence's properties,
the prior, and on synthetic galleries of look-alikes the FPIR that fresh strangers meet at
the calibrated threshold, the threshold in force for every process, and the warning once the
gallery has outgrown its calibration."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import facedb
from facedb import calibration
from facedb.calibration import (
    ScoreModel,
    ScoreSample,
    check_target,
    fit_genuine,
    fit_tail,
)
from facedb.store import FaceInfo

from .helpers import lookalike_world, lookalikes, unit_rows

NOW = datetime(2026, 12, 2, tzinfo=UTC)


def _model(seed: int = 0) -> ScoreModel:
    rng = np.random.default_rng(seed)
    pairs = rng.normal(0.0, 0.07, 200_000)
    return ScoreModel(pair=fit_tail(pairs), best=None, genuine=fit_genuine(rng.normal(0.7, 0.08, 500)))


# -- targets ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fpir", "fmr", "match"),
    [
        (0.01, 1e-4, "not both"),
        (None, None, "give a target"),
        (0.0, None, "target_fpir"),
        (1.0, None, "target_fpir"),
        (None, -1e-4, "target_fmr"),
        (None, 2.0, "target_fmr"),
        (None, float("nan"), "target_fmr"),
        ("x", None, "target_fpir"),
    ],
)
def test_a_bad_target_is_a_config_error_naming_it(fpir: object, fmr: object, match: str) -> None:
    with pytest.raises(facedb.ConfigError, match=match):
        check_target(fpir, fmr)  # type: ignore[arg-type]


def test_a_good_target_is_its_kind_and_value() -> None:
    assert check_target(0.01, None) == ("fpir", 0.01)
    assert check_target(None, 1e-4) == ("fmr", 1e-4)


# -- the tail ----------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [1e-3, 1e-4, 1e-5])
def test_the_tail_puts_the_threshold_where_fresh_scores_meet_the_rate(rate: float) -> None:
    """Fitted on 300k normal scores, checked on 3M fresh ones: within a factor of 2, also at
    1e-5, past the sample's own top (a normal fit is not what is tested: the tail is)."""
    rng = np.random.default_rng(1)
    tail = fit_tail(rng.normal(0.0, 0.07, 300_000))
    fresh = rng.normal(0.0, 0.07, 3_000_000)
    measured = float((fresh >= tail.threshold(rate, 1)).mean())
    assert rate / 2 <= measured <= rate * 2


def test_the_tail_follows_a_bounded_non_normal_distribution() -> None:
    """A mixture of a broad body and a tight cluster of look-alikes, which a normal fit of the
    whole sample gets wrong by orders of magnitude."""
    rng = np.random.default_rng(2)

    def draw(n: int) -> np.ndarray:
        body = rng.normal(0.0, 0.05, n)
        cluster = rng.random(n) < 0.02
        body[cluster] = 0.3 + 0.2 * rng.beta(2, 5, int(cluster.sum()))
        return body

    sample, fresh = draw(200_000), draw(4_000_000)
    tail = fit_tail(sample)
    normal = sample.mean() + 3.719 * sample.std()  # a normal fit's 1e-4 quantile
    measured = float((fresh >= tail.threshold(1e-4, 1)).mean())
    assert 0.5e-4 <= measured <= 2e-4
    assert (fresh >= normal).mean() > 10 * 1e-4


def test_the_threshold_and_the_rate_at_a_size_are_inverse() -> None:
    tail = fit_tail(np.random.default_rng(3).normal(0.2, 0.05, 5000), size=999)
    for people in (500, 1000, 10_000):
        for rate in (0.05, 0.01, 1e-3):
            assert float(tail.at_size(tail.threshold(rate, people), people)) == pytest.approx(rate, rel=1e-6)
    # A larger gallery needs a higher threshold for the same FPIR.
    assert tail.threshold(0.01, 1000) < tail.threshold(0.01, 10_000)


def test_too_few_scores_cannot_make_a_tail() -> None:
    with pytest.raises(facedb.ConfigError, match="at least"):
        fit_tail(np.zeros(10))


# -- confidence --------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    a=st.floats(-1, 1, allow_nan=False),
    b=st.floats(-1, 1, allow_nan=False),
    people=st.integers(1, 10**6),
)
def test_confidence_never_falls_as_the_similarity_rises(a: float, b: float, people: int) -> None:
    low, high = sorted((a, b))
    conf = MODEL.confidence([low, high], people)
    assert 0.0 <= conf[0] <= conf[1] <= 1.0


MODEL = _model()


def test_confidence_is_low_among_strangers_and_high_among_matches() -> None:
    low, mid, high = MODEL.confidence([0.2, MODEL.threshold("fmr", 1e-4, 1), 0.8], 1000)
    assert low < 0.05 and high > 0.99 and low <= mid <= high


def test_a_larger_gallery_lowers_confidence_at_the_same_similarity() -> None:
    s = MODEL.threshold("fpir", 0.01, 1000)
    small, large = MODEL.confidence([s], 1000)[0], MODEL.confidence([s], 1_000_000)[0]
    assert large < small


# -- calibrations ------------------------------------------------------------------------------


def test_a_small_gallery_falls_back_to_the_prior_and_says_so() -> None:
    prior, _ = calibration.default_prior()
    cal = calibration.calibrate(
        None, kind="fmr", target=1e-4, people=12, faces=20, prior=prior, created_at=NOW
    )
    assert cal.source == "prior" and "12 people" in cal.note
    assert cal.model is prior
    assert cal.threshold == pytest.approx(prior.threshold("fmr", 1e-4, 1))


def test_few_genuine_scores_take_the_genuine_side_from_the_prior() -> None:
    rng = np.random.default_rng(4)
    prior, _ = calibration.default_prior()
    sample = ScoreSample(
        pairs=rng.normal(0, 0.07, 50_000),
        best=rng.normal(0.25, 0.03, 1000),
        best_size=999,
        genuine=rng.normal(0.7, 0.05, 5),
    )
    cal = calibration.calibrate(
        sample, kind="fpir", target=0.01, people=1000, faces=1005, prior=prior, created_at=NOW
    )
    assert cal.source == "gallery+prior" and "genuine" in cal.note
    assert cal.model.genuine is prior.genuine
    assert cal.estimated_fpir == pytest.approx(0.01, rel=1e-6)


def test_a_calibration_survives_its_row() -> None:
    cal = calibration.calibrate(
        None, kind="fpir", target=0.01, people=5, faces=9, prior=MODEL, created_at=NOW
    )
    fields = calibration.calibration_fields(cal, "m")
    assert fields["model_id"] == "m" and json.loads(fields["params"])["note"] == cal.note

    class Row:
        pass

    row = Row()
    row.__dict__.update(fields)
    again = calibration.calibration_from_row(row)
    assert again.model == ScoreModel.from_json(cal.model.to_json())
    for name in ("threshold", "target", "target_kind", "estimated_fpir", "estimated_fnir", "people"):
        assert getattr(again, name) == getattr(cal, name)
    assert (again.faces, again.created_at, again.source, again.note) == (9, NOW, "prior", cal.note)


@pytest.mark.timeout(60)
def test_a_calibration_prints_as_a_few_readable_lines() -> None:
    """`print(db.calibration)` printed about 400 quantiles of its score model."""
    cal = calibration.calibrate(
        None, kind="fpir", target=0.01, people=5, faces=9, prior=MODEL, created_at=NOW
    )
    text = str(cal)
    assert len(text.splitlines()) <= 6 and len(text) < 600, text
    assert f"threshold {cal.threshold:.3f}" in text and "FPIR 0.01" in text and cal.note in text
    assert "5 people" in text and "quantiles" not in text
    shown = repr(cal)
    assert len(shown) < 600 and "quantiles" not in shown and shown.startswith("Calibration(threshold="), shown
    assert len(repr(cal.model)) < 600, repr(cal.model)  # the model alone is short too


def test_the_staleness_warning_waits_for_growth() -> None:
    cal = calibration.calibrate(
        None, kind="fpir", target=0.01, people=1000, faces=1000, prior=MODEL, created_at=NOW
    )
    assert calibration.staleness_warning(cal, 1500) is None
    warning = calibration.staleness_warning(cal, 10_000)
    assert warning is not None and "1000" in warning and "10000" in warning


def test_the_default_threshold_is_the_default_models_prior() -> None:
    prior, threshold = calibration.default_prior()
    assert facedb.DEFAULT_THRESHOLD == threshold
    # The prior's threshold is the one at FMR 1e-4, rounded up (benchmarks/prior.py).
    assert prior.fmr(threshold) <= 1e-4 < prior.fmr(threshold - 0.01)


# -- galleries ---------------------------------------------------------------------------------


def _lookalike_gallery(
    folder: Path, people: int, seed: int, strangers: int
) -> tuple[facedb.FaceDB, np.ndarray]:
    """A gallery of look-alikes (a fifth of them with a second face), and fresh strangers'
    best similarity in it."""
    rng = np.random.default_rng(seed + 1)
    centres, pull = lookalike_world(seed, people)
    rows = lookalikes(rng, people, centres, pull)
    db = facedb.FaceDB(folder)
    added = db.import_embeddings([f"p{i}" for i in range(people)], rows)
    some = added[: people // 5]
    second = rows[: len(some)] + rng.standard_normal((len(some), 512)).astype(np.float32) * 0.045
    second /= np.linalg.norm(second, axis=1, keepdims=True)
    with db.store.write() as s:
        ids = db.store.add_faces(s, [p.id for p in some], db.facts.model_id, second, [FaceInfo()] * len(some))
        db.store.bump(s, added=ids)
    db.sync_vectors()
    fresh = lookalikes(rng, strangers, centres, pull)
    best = np.array([c[0].similarity if c else -1.0 for c in db.search(fresh, k=1)])
    return db, best


@pytest.mark.parametrize(("people", "seed"), [(1000, 0), (1000, 1), (1000, 2), (10_000, 0), (10_000, 1)])
def test_fresh_strangers_meet_the_target_fpir_within_a_factor_of_2(
    tmp_path: Path, people: int, seed: int
) -> None:
    """3000 fresh strangers from the same world of look-alikes, searched at the calibrated
    threshold: never more than twice the target (strangers named), on every seed.

    Not fewer than half of it either from 10,000 people on. A gallery of 1,000 holds only
    about 10 best scores above a 1% threshold: there it is conservative at times (seed 0
    measures 0.36x, README "Calibration"), which costs genuine matches, not false names; the
    lower bound is not asserted there. benchmarks/calibration.py measures 100k as well."""
    db, best = _lookalike_gallery(tmp_path / "g", people, seed, 3000)
    with db:
        cal = db.calibrate(target_fpir=0.01)
        assert cal.source == "gallery" and cal.target_kind == "fpir" and cal.people == people
        assert cal.faces == people + people // 5
        measured = float((best >= cal.threshold).mean())
        assert measured <= 0.02, (cal.threshold, measured)
        if people >= 10_000:
            assert measured >= 0.005, (cal.threshold, measured)
        assert db.threshold == cal.threshold


def test_a_gallery_grown_10x_warns_that_its_calibration_is_stale(tmp_path: Path) -> None:
    db, _ = _lookalike_gallery(tmp_path / "g", 300, 3, 10)
    with db:
        cal = db.calibrate(target_fpir=0.01)
        stats = db.stats()
        assert stats["threshold_source"] == "calibrated" and stats["threshold"] == cal.threshold
        assert stats["calibrated_people"] == 300 and stats["calibration_warning"] is None
        assert stats["calibration_target"] == "fpir 0.01" and stats["calibration_source"] == "gallery"
        db.import_embeddings([f"q{i}" for i in range(2700)], unit_rows(5, 2700))
        warning = db.stats()["calibration_warning"]
        assert warning is not None and "300" in warning and "3000" in warning


def test_the_calibration_is_in_force_for_every_process_and_an_explicit_threshold_wins(
    tmp_path: Path,
) -> None:
    with facedb.FaceDB(tmp_path / "g") as db, facedb.FaceDB(tmp_path / "g") as other:
        db.import_embeddings(["a", "b", "c"], unit_rows(6, 3))
        # The prior's FPIR 1% threshold for the 3 people the other process wrote.
        assert other.threshold == pytest.approx(0.2864, abs=1e-3)
        assert other.stats()["threshold_source"] == "prior" and other.calibration is None
        cal = db.calibrate(target_fmr=1e-3)
        assert cal.source == "prior" and cal.threshold < facedb.DEFAULT_THRESHOLD
        assert other.threshold == cal.threshold and other.calibration == cal
        with facedb.FaceDB(tmp_path / "g", threshold=0.9) as explicit:
            assert explicit.threshold == 0.9 and explicit.stats()["threshold_source"] == "explicit"
        newer = db.calibrate(target_fmr=1e-5)
        assert other.threshold == newer.threshold > cal.threshold


def test_calibrate_refuses_a_bad_target_and_writes_nothing(tmp_path: Path) -> None:
    with facedb.FaceDB(tmp_path / "g") as db:
        generation = db.store.generation()
        for kwargs in ({}, {"target_fpir": 0.01, "target_fmr": 1e-4}, {"target_fpir": 1.5}):
            with pytest.raises(facedb.ConfigError, match="target"):
                db.calibrate(**kwargs)  # type: ignore[arg-type]
        assert db.store.generation() == generation and db.calibration is None


def test_a_read_only_gallery_cannot_calibrate(tmp_path: Path) -> None:
    with facedb.FaceDB(tmp_path / "g") as db:
        db.import_embeddings(["a"], unit_rows(7, 1))
    with facedb.FaceDB(tmp_path / "g", read_only=True) as db, pytest.raises(facedb.ReadOnlyGallery):
        db.calibrate(target_fpir=0.01)
