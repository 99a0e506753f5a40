"""The threshold for a target: the target checked, the score model chosen (the gallery's own
when it is large enough, otherwise the model's prior), the threshold read off it, and the
warning when the gallery has outgrown it.
"""

from __future__ import annotations

from datetime import datetime

from facedb.calibration.records import Calibration
from facedb.calibration.sampling import ScoreSample
from facedb.calibration.scores import ScoreModel, TargetKind, fit_genuine, fit_tail
from facedb.errors import ConfigError

__all__ = [
    "GROWTH_WARNING",
    "MIN_GENUINE",
    "MIN_PEOPLE",
    "calibrate",
    "check_target",
    "staleness_warning",
]

#: Fewer people than this and the gallery's own impostor scores are too few for the tail:
#: the model's prior is used (``Calibration.source == "prior"``).
MIN_PEOPLE = 200

#: Fewer genuine scores (faces of people with several faces) than this and the genuine side
#: comes from the prior (``source == "gallery+prior"``).
MIN_GENUINE = 30

#: A gallery this many times larger than it was calibrated for gets a warning (stats, /health).
GROWTH_WARNING = 2.0


def check_target(target_fpir: float | None, target_fmr: float | None) -> tuple[TargetKind, float]:
    """The one target given, as (kind, value).

    Raises:
        ConfigError: both or neither given, or a value outside (0, 1), naming the argument.
    """
    if target_fpir is not None and target_fmr is not None:
        raise ConfigError("give target_fpir or target_fmr, not both")
    if target_fpir is None and target_fmr is None:
        raise ConfigError("give a target: target_fpir (e.g. 0.01) or target_fmr (e.g. 1e-4)")
    kind: TargetKind = "fpir" if target_fpir is not None else "fmr"
    value = target_fpir if target_fpir is not None else target_fmr
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"target_{kind} must be a number between 0 and 1, got {value!r}") from None
    if not 0.0 < number < 1.0 or isinstance(value, bool):
        raise ConfigError(f"target_{kind} must be between 0 and 1 (exclusive), got {value!r}")
    return kind, number


def calibrate(
    sample: ScoreSample | None,
    *,
    kind: TargetKind,
    target: float,
    people: int,
    faces: int,
    prior: ScoreModel,
    created_at: datetime,
) -> Calibration:
    """The calibration for a target on a gallery of ``people`` (and ``faces``): fitted on
    ``sample`` when it is large enough (:data:`MIN_PEOPLE`, :data:`MIN_GENUINE`), otherwise
    (or with no sample) the model's ``prior``, which ``source`` and ``note`` say."""
    notes = []
    if sample is None or people < MIN_PEOPLE or len(sample.best) < MIN_PEOPLE // 2:
        model, source = prior, "prior"
        notes.append(
            f"the gallery has {people} people; its own impostor scores need {MIN_PEOPLE}: "
            "the model's prior is used"
        )
    else:
        genuine = prior.genuine
        source = "gallery"
        if len(sample.genuine) >= MIN_GENUINE:
            genuine = fit_genuine(sample.genuine)
        else:
            source = "gallery+prior"
            notes.append(
                f"{len(sample.genuine)} genuine scores (faces of people with several faces); "
                f"{MIN_GENUINE} are needed: genuine scores from the model's prior"
            )
        model = ScoreModel(
            pair=fit_tail(sample.pairs, 1), best=fit_tail(sample.best, sample.best_size), genuine=genuine
        )
    threshold = min(max(model.threshold(kind, target, people), 0.0), 1.0)
    return Calibration(
        threshold=threshold,
        target=target,
        target_kind=kind,
        estimated_fpir=model.fpir(threshold, people),
        estimated_fnir=model.fnir(threshold),
        people=people,
        faces=faces,
        created_at=created_at,
        source=source,
        model=model,
        note="; ".join(notes),
    )


def staleness_warning(calibration: Calibration, people: int) -> str | None:
    """A warning when the gallery has grown :data:`GROWTH_WARNING` times past the size it was
    calibrated for (an FPIR target then no longer holds), else None."""
    if people < GROWTH_WARNING * max(calibration.people, 1):
        return None
    now = calibration.model.fpir(calibration.threshold, people)
    return (
        f"calibrated for {calibration.people} people, the gallery now has {people}: "
        f"the estimated FPIR at threshold {calibration.threshold:.3f} is {now:.2g} "
        f"(target {calibration.target_kind} {calibration.target:g}); run `facedb calibrate` again"
    )
