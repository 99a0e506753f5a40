"""Every threshold a gallery uses, from one score model: the one place that decides them.

The naming threshold (identify, watch, ``verify`` with a gallery) is, in this order:

1. explicit: ``FaceDB(threshold=)`` or ``db.threshold = ...``;
2. calibrated: the gallery's newest calibration (``db.calibrate``);
3. the prior, following the gallery: the threshold at which the model's prior estimates a
   stranger's search names somebody with the target FPIR (1% by default) among the gallery's
   current number of people, but never above the prior's FMR 1e-4 threshold (0.47 for the
   default model) that larger galleries get: the prior's impostor tail is fitted on about
   1,100 pairs, so past that point it is an extrapolation, not evidence. Past the size where
   that cap binds (about 100 people for the default model), the estimated FPIR exceeds the
   target and :attr:`Thresholds.warning` says so and points to ``calibrate``.

The others follow from it, with a stated relation:

- ``enrollment``: the enrollment gate's likeness floor (a new photo must be at least this
  similar to one of its person's own faces) is the stricter of the policy's floor (0.35: below
  it, different people score) and the naming threshold: an enrolled photo is durable, so it
  may be held to more than naming, never to less;
- ``pairwise``: grouping unnamed faces (discover, a watch's strangers) and the audit's
  "closer to another" and "enrolled twice" compare many faces with many groups or people, so
  they keep the FMR-based threshold whatever the gallery's size, and never go below naming.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from facedb.calibration.records import Calibration
from facedb.calibration.scores import ScoreModel
from facedb.calibration.thresholds import staleness_warning

__all__ = ["DEFAULT_TARGET_FPIR", "Thresholds", "thresholds_in_force"]

#: The FPIR an uncalibrated gallery's threshold aims at: 1% of strangers' searches may name
#: somebody.
DEFAULT_TARGET_FPIR = 0.01

Source = Literal["explicit", "calibrated", "prior"]


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The thresholds in force in a gallery (see the module for the rule and relations).

    Attributes:
        naming: a face is named a person at this similarity or above (identify, watch,
            ``verify`` with a gallery).
        source: ``"explicit"``, ``"calibrated"`` or ``"prior"`` (following the gallery's
            size).
        rule: how ``naming`` was chosen, in words (stats, /health, the CLI).
        enrollment: the enrollment gate's likeness floor (>= naming).
        pairwise: grouping's and the audit's threshold (>= naming).
        people: the number of people the thresholds were chosen for.
        estimated_fpir: the share of strangers' searches estimated to name somebody, at
            ``naming`` among ``people``.
        target_fpir: the FPIR aimed at (the prior's rule), else None.
        warning: the estimated FPIR exceeds the target of an uncalibrated gallery (past the
            size where the cap binds), or the gallery has grown well past its calibration;
            with what to do; else None.
    """

    naming: float
    source: Source
    rule: str
    enrollment: float
    pairwise: float
    people: int
    estimated_fpir: float
    target_fpir: float | None
    warning: str | None


def thresholds_in_force(
    *,
    model: ScoreModel,
    fmr_threshold: float,
    people: int,
    explicit: float | None,
    calibration: Calibration | None,
    target_fpir: float = DEFAULT_TARGET_FPIR,
    enrollment_floor: float = 0.35,
) -> Thresholds:
    """The gallery's thresholds.

    Args:
        model: the score model in force (the calibration's, else the model's prior).
        fmr_threshold: the prior's FMR-based threshold (the cap of the size-following rule,
            and the pairwise threshold).
        people: the gallery's number of people now.
        explicit: the user's threshold, if any.
        calibration: the calibration in force, if any.
        target_fpir: the FPIR the prior's rule aims at.
        enrollment_floor: the enrollment policy's own likeness floor.
    """
    size = max(int(people), 1)
    source: Source
    warning: str | None = None
    target: float | None = None
    if explicit is not None:
        naming, source = float(explicit), "explicit"
        rule = f"set explicitly ({naming:.3f})"
    elif calibration is not None:
        naming, source = float(calibration.threshold), "calibrated"
        rule = (
            f"calibrated for {calibration.target_kind} {calibration.target:g} at {calibration.people} people "
            f"({naming:.3f})"
        )
        if calibration.target_kind == "fpir":
            target = calibration.target
        warning = staleness_warning(calibration, size)
    else:
        source, target = "prior", float(target_fpir)
        following = model.threshold("fpir", target, size)
        naming = min(following, fmr_threshold)
        if following <= fmr_threshold:
            rule = (
                f"the model's prior at FPIR {target:g} for {size} {'person' if size == 1 else 'people'} "
                f"({naming:.3f}); it rises with the gallery up to {fmr_threshold:.2f}"
            )
        else:
            rule = (
                f"the model's prior at FMR 1e-4 ({naming:.2f}): the FPIR {target:g} threshold for "
                f"{size} people ({following:.3f}) lies in the prior's far tail, which is not evidence"
            )
    estimated = float(model.fpir(naming, size))
    if source == "prior" and target is not None and estimated > 1.05 * target:
        warning = (
            f"the estimated FPIR at threshold {naming:.3f} among {size} people is {estimated:.2g}, above "
            f"the target {target:g}: run `facedb calibrate --target-fpir {target:g}` on this gallery"
        )
    return Thresholds(
        naming=naming,
        source=source,
        rule=rule,
        enrollment=max(float(enrollment_floor), naming),
        pairwise=max(naming, float(fmr_threshold)),
        people=size,
        estimated_fpir=estimated,
        target_fpir=target,
        warning=warning,
    )
