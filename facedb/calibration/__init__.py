"""Calibrated thresholds and confidence: score models fitted on the gallery's own templates
(or the model's prior), the threshold for a target error rate, and the probability that a
named person is right.

Pure numpy (no scipy), tested without models or a database (tests/test_calibration.py). The
gallery gathers the scores (:func:`gallery_scores`) and stores the :class:`Calibration`;
everything that decides is here.

The score model has three parts, all scores "as identify ranks" (a face against a person is
the best over the person's templates):

- ``pair``: a stranger's score against one given person (what FMR counts);
- ``best``: a stranger's best score over a whole gallery of ``best.size`` people (what FPIR
  counts: a search with any candidate above the threshold is a false positive, so the k of
  the candidate list does not change it; only the best one matters);
- ``genuine``: a person's face against their own other faces (what FNIR counts).

A module a job:

- :mod:`~facedb.calibration.scores`: the score models (impostor tails by peaks over
  threshold, genuine scores), their fits, and the rates, thresholds and confidence read off
  them;
- :mod:`~facedb.calibration.sampling`: the scores gathered from the gallery itself;
- :mod:`~facedb.calibration.thresholds`: the target checked, the model chosen (the
  gallery's or the prior), the threshold for the target, and the staleness warning;
- :mod:`~facedb.calibration.records`: the :class:`Calibration` record and its row in the
  store;
- :mod:`~facedb.calibration.priors`: the recognizers' priors (``priors.json``);
- :mod:`~facedb.calibration.in_force`: every threshold a gallery uses (naming, the
  enrollment floor, grouping and the audit), decided in one place from one score model.
"""

from __future__ import annotations

from facedb.calibration.in_force import DEFAULT_TARGET_FPIR, Thresholds, thresholds_in_force
from facedb.calibration.priors import default_prior, model_enrollment_floor, model_prior
from facedb.calibration.records import Calibration, calibration_fields, calibration_from_row
from facedb.calibration.sampling import ScoreSample, gallery_scores, probes_for
from facedb.calibration.sampling import Search as Search
from facedb.calibration.scores import GenuineModel, ScoreModel, Tail, TargetKind, fit_genuine, fit_tail
from facedb.calibration.thresholds import (
    GROWTH_WARNING,
    MIN_GENUINE,
    MIN_PEOPLE,
    calibrate,
    check_target,
    staleness_warning,
)

__all__ = [
    "DEFAULT_TARGET_FPIR",
    "GROWTH_WARNING",
    "MIN_GENUINE",
    "MIN_PEOPLE",
    "Calibration",
    "GenuineModel",
    "ScoreModel",
    "ScoreSample",
    "Tail",
    "TargetKind",
    "Thresholds",
    "calibrate",
    "calibration_fields",
    "calibration_from_row",
    "check_target",
    "default_prior",
    "fit_genuine",
    "fit_tail",
    "gallery_scores",
    "model_enrollment_floor",
    "model_prior",
    "probes_for",
    "staleness_warning",
    "thresholds_in_force",
]
