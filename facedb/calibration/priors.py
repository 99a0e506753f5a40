"""The recognizers' prior score models (facedb/priors.json, measured on labelled photos by
benchmarks/prior.py): what a gallery too small to calibrate on its own falls back to, and
where the default threshold comes from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from facedb.calibration.scores import ScoreModel

__all__ = ["default_prior", "model_enrollment_floor", "model_prior"]


@dataclass(frozen=True, slots=True)
class _Prior:
    model: ScoreModel
    threshold: float
    description: str


def _priors() -> dict[str, Any]:
    text = resources.files("facedb").joinpath("priors.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


_PRIORS = _priors()


def _prior(entry: dict[str, Any]) -> _Prior:
    return _Prior(ScoreModel.from_json(entry["model"]), float(entry["threshold"]), str(entry["measured"]))


def default_prior() -> tuple[ScoreModel, float]:
    """The default recognizer's prior score model and the threshold it gives (the default
    threshold of facedb.engine and of an uncalibrated gallery)."""
    found = _prior(_PRIORS["models"][_PRIORS["default"]])
    return found.model, found.threshold


def model_prior(model_id: str) -> tuple[ScoreModel, float, str]:
    """The prior of a recognizer (by its model id: ``file:sha256:...``): its score model, its
    threshold, and where it came from. A model without a prior of its own gets the default
    model's, and the description says so."""
    entry = _PRIORS["models"].get(model_id)
    if entry is None:
        found = _prior(_PRIORS["models"][_PRIORS["default"]])
        return (
            found.model,
            found.threshold,
            f"no prior for {model_id}: the default model's ({found.description})",
        )
    found = _prior(entry)
    return found.model, found.threshold, found.description


def model_enrollment_floor(model_id: str) -> float | None:
    """The enrollment gate's likeness floor measured for a recognizer (priors.json's
    ``enrollment_floor``: above every impostor pair of its labelled faces), or None for the
    gate's own (facedb.enrollment.OWN_FLOOR, measured on the default model)."""
    entry = _PRIORS["models"].get(model_id)
    floor = None if entry is None else entry.get("enrollment_floor")
    return None if floor is None else float(floor)
