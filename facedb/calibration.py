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

Impostor tails are modelled by peaks over threshold: below the top few per cent of the
sample the empirical distribution, above it a generalized Pareto tail fitted by probability
weighted moments (Hosking and Wallis, 1987), so that FPIR 1e-3..1e-5 is extrapolated from
the shape of the tail, not from a normal fit of the whole distribution. A rate measured at one
gallery size is carried to another as if the people were independent:
``FPIR_N = 1 - (1 - FPIR_n) ** (N / n)``.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from facedb.errors import ConfigError

__all__ = [
    "GROWTH_WARNING",
    "MIN_GENUINE",
    "MIN_PEOPLE",
    "Calibration",
    "GenuineModel",
    "ScoreModel",
    "ScoreSample",
    "Tail",
    "TargetKind",
    "calibrate",
    "calibration_fields",
    "calibration_from_row",
    "check_target",
    "default_prior",
    "fit_genuine",
    "fit_tail",
    "gallery_scores",
    "model_prior",
    "probes_for",
    "staleness_warning",
]

#: What a target counts: false positive identifications of strangers over the whole gallery
#: (``"fpir"``), or false matches of a stranger against one person (``"fmr"``).
TargetKind = Literal["fpir", "fmr"]

#: Fewer people than this and the gallery's own impostor scores are too few for the tail:
#: the model's prior is used (``Calibration.source == "prior"``).
MIN_PEOPLE = 200

#: Fewer genuine scores (faces of people with several faces) than this and the genuine side
#: comes from the prior (``source == "gallery+prior"``).
MIN_GENUINE = 30

#: A gallery this many times larger than it was calibrated for gets a warning (stats, /health).
GROWTH_WARNING = 2.0

#: The fraction of a sample above the tail's start (peaks over threshold), within bounds.
_TAIL_FRACTION = 0.01
_TAIL_MIN, _TAIL_MAX = 50, 20_000
_LEVELS = np.linspace(0.0, 1.0, 201)


@dataclass(frozen=True, slots=True)
class Tail:
    """The distribution of one kind of impostor score: empirical below ``start``, a
    generalized Pareto tail above it.

    Attributes:
        size: how many people each score is the best over (1 for pairs).
        start: where the tail begins (the sample's ``1 - rate`` quantile).
        rate: the fraction of scores above ``start``.
        shape: the tail's shape xi (negative: bounded, as cosine scores are).
        scale: the tail's scale sigma.
        quantiles: the sample's quantiles at 201 evenly spaced levels 0..1 (the body).
        count: how many scores the fit saw.
    """

    size: int
    start: float
    rate: float
    shape: float
    scale: float
    quantiles: tuple[float, ...]
    count: int

    def _body(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """The empirical part as (scores, levels), ending at (start, 1 - rate), where the
        tail takes over: the quantile grid alone is too coarse near the top."""
        keep = _LEVELS < 1.0 - self.rate
        scores = np.minimum(np.asarray(self.quantiles)[keep], self.start)
        return np.r_[scores, self.start], np.r_[_LEVELS[keep], 1.0 - self.rate]

    def survival(self, score: NDArray[np.float64] | float) -> NDArray[np.float64]:
        """P(score >= s) at this tail's own size."""
        s = np.asarray(score, dtype=np.float64)
        scores, levels = self._body()
        body = 1.0 - np.interp(s, scores, levels)
        excess = np.maximum(s - self.start, 0.0)
        if abs(self.shape) < 1e-6:
            tail = self.rate * np.exp(-excess / self.scale)
        else:
            base = np.maximum(1.0 + self.shape * excess / self.scale, 0.0)
            with np.errstate(divide="ignore"):
                tail = self.rate * np.power(base, -1.0 / self.shape)
        return np.where(s >= self.start, np.minimum(tail, self.rate), np.maximum(body, self.rate))

    def at_size(self, score: NDArray[np.float64] | float, people: int) -> NDArray[np.float64]:
        """P(the best of ``people`` people's scores >= s), from this tail's own size."""
        own = np.clip(self.survival(score), 0.0, 1.0)
        return -np.expm1(np.log1p(-np.minimum(own, 1.0 - 1e-16)) * (max(people, 1) / self.size))

    def threshold(self, rate: float, people: int) -> float:
        """The score the best of ``people`` people's scores exceeds with probability ``rate``."""
        own = -math.expm1(math.log1p(-rate) * self.size / max(people, 1))
        if own >= self.rate:
            scores, levels = self._body()
            return float(np.interp(1.0 - own, levels, scores))
        if abs(self.shape) < 1e-6:
            return self.start - self.scale * math.log(own / self.rate)
        return float(self.start + self.scale / self.shape * ((own / self.rate) ** (-self.shape) - 1.0))

    def to_json(self) -> dict[str, Any]:
        """The tail as plain JSON (stored in a calibration's params)."""
        return {
            "size": self.size,
            "start": self.start,
            "rate": self.rate,
            "shape": self.shape,
            "scale": self.scale,
            "count": self.count,
            "quantiles": [round(q, 6) for q in self.quantiles],
        }

    @staticmethod
    def from_json(data: dict[str, Any]) -> Tail:
        """A tail from :meth:`to_json`'s shape."""
        return Tail(
            size=int(data["size"]),
            start=float(data["start"]),
            rate=float(data["rate"]),
            shape=float(data["shape"]),
            scale=float(data["scale"]),
            quantiles=tuple(float(q) for q in data["quantiles"]),
            count=int(data["count"]),
        )


@dataclass(frozen=True, slots=True)
class GenuineModel:
    """Genuine scores (a face against the person's own other faces): their quantiles (for
    FNIR) and a normal approximation (for confidence's density).

    Attributes:
        mean: their mean.
        sd: their standard deviation (at least 0.02).
        quantiles: at 201 evenly spaced levels 0..1.
        count: how many scores the fit saw.
    """

    mean: float
    sd: float
    quantiles: tuple[float, ...]
    count: int

    def below(self, score: float) -> float:
        """P(a genuine score < s): the FNIR at threshold s."""
        return float(np.interp(score, np.asarray(self.quantiles), _LEVELS, left=0.0, right=1.0))

    def density(self, score: NDArray[np.float64]) -> NDArray[np.float64]:
        """The normal approximation's density at ``score``."""
        z = (score - self.mean) / self.sd
        return np.exp(-0.5 * z * z) / (self.sd * math.sqrt(2.0 * math.pi))

    def to_json(self) -> dict[str, Any]:
        """The model as plain JSON."""
        return {
            "mean": self.mean,
            "sd": self.sd,
            "count": self.count,
            "quantiles": [round(q, 6) for q in self.quantiles],
        }

    @staticmethod
    def from_json(data: dict[str, Any]) -> GenuineModel:
        """A model from :meth:`to_json`'s shape."""
        return GenuineModel(
            mean=float(data["mean"]),
            sd=float(data["sd"]),
            quantiles=tuple(float(q) for q in data["quantiles"]),
            count=int(data["count"]),
        )


@dataclass(frozen=True, slots=True)
class ScoreModel:
    """Impostor and genuine score distributions of a gallery (or of the model's prior).

    Attributes:
        pair: a stranger against one person.
        best: a stranger's best over ``best.size`` people, measured on the gallery itself
            (None for the prior: then ``pair`` is carried to any size).
        genuine: a person's face against their own other faces.
    """

    pair: Tail
    best: Tail | None
    genuine: GenuineModel

    def fpir(self, threshold: float, people: int) -> float:
        """The estimated share of strangers' searches that name somebody, in a gallery of
        ``people``."""
        tail = self.best or self.pair
        return float(tail.at_size(threshold, people))

    def fmr(self, threshold: float) -> float:
        """The estimated share of stranger-against-person comparisons at or above it."""
        return float(self.pair.survival(threshold))

    def fnir(self, threshold: float) -> float:
        """The estimated share of genuine searches below it (their person is not named)."""
        return self.genuine.below(threshold)

    def threshold(self, kind: TargetKind, target: float, people: int) -> float:
        """The lowest score whose estimated FPIR (at ``people``) or FMR is the target."""
        if kind == "fmr":
            return self.pair.threshold(target, 1)
        return (self.best or self.pair).threshold(target, people)

    def confidence(
        self, similarity: Sequence[float] | NDArray[np.floating[Any]], people: int, prior: float = 0.5
    ) -> NDArray[np.float64]:
        """The probability that a face named at ``similarity`` is the person named.

        Bayes' rule between "a face of the person, and nobody else scored higher" (the
        genuine density times the share of searches with no impostor above the score) and "a
        stranger whose best over ``people`` people reached this score" (the density of the
        best impostor score at that size), with ``prior`` the share of searched faces that belong to
        somebody enrolled. Made non-decreasing in similarity (on a grid of scores: the
        lowest value at or above each score), so a higher score never means more doubt.
        """
        grid = np.linspace(-1.0, 1.0, 2001)
        survival = (self.best or self.pair).at_size(grid, people)
        impostor = np.maximum(-np.gradient(survival, grid), 0.0)
        # The named person's score is the best one too: for a face of theirs, everybody else
        # scored lower (the share 1 - FPIR); for a stranger, this is the best of N impostors.
        num = prior * self.genuine.density(grid) * (1.0 - survival)
        den = num + (1.0 - prior) * impostor
        # Where neither kind of face scores (a density below 1e-9 of its peak), the side of
        # the genuine mean decides: far below it nothing is a match, far above it all is.
        seen = den > 1e-9 * float(den.max())
        with np.errstate(invalid="ignore", divide="ignore"):
            raw = np.where(seen, num / den, np.where(grid > self.genuine.mean, 1.0, 0.0))
        raw = np.nan_to_num(raw, nan=0.0)
        # Non-decreasing: the largest value from its first occurrence on, and below it the
        # lowest value at or above each score (so an odd spot where both densities are tiny
        # cannot lift the scores above it).
        top = int(np.argmax(raw))
        curve = np.full_like(raw, raw[top])
        curve[: top + 1] = np.minimum.accumulate(raw[: top + 1][::-1])[::-1]
        return np.asarray(np.interp(np.asarray(similarity, dtype=np.float64), grid, curve))

    def to_json(self) -> dict[str, Any]:
        """The model as plain JSON (a calibration row's params)."""
        return {
            "pair": self.pair.to_json(),
            "best": None if self.best is None else self.best.to_json(),
            "genuine": self.genuine.to_json(),
        }

    @staticmethod
    def from_json(data: dict[str, Any]) -> ScoreModel:
        """A model from :meth:`to_json`'s shape."""
        return ScoreModel(
            pair=Tail.from_json(data["pair"]),
            best=None if data.get("best") is None else Tail.from_json(data["best"]),
            genuine=GenuineModel.from_json(data["genuine"]),
        )


@dataclass(frozen=True, slots=True)
class Calibration:
    """A naming threshold chosen for a target error rate, and the score model behind it.

    Attributes:
        threshold: the similarity at which a face is named.
        target: the error rate asked for.
        target_kind: ``"fpir"`` (strangers named, over the whole gallery) or ``"fmr"``
            (a stranger against one person).
        estimated_fpir: the model's FPIR at the threshold, for the gallery's size.
        estimated_fnir: the model's FNIR at the threshold (people not named).
        people: the gallery's size when calibrated.
        faces: its templates when calibrated.
        created_at: when (UTC).
        source: ``"gallery"`` (fitted on the gallery's own templates), ``"gallery+prior"``
            (impostors from the gallery, genuine scores from the model's prior: too few
            people with several faces) or ``"prior"`` (the gallery is too small: the
            model's prior, measured on photos, README "Calibration").
        model: the score model (confidence and estimates at other sizes come from it).
        note: why the source is what it is, in words.
    """

    threshold: float
    target: float
    target_kind: TargetKind
    estimated_fpir: float | None
    estimated_fnir: float | None
    people: int
    faces: int
    created_at: datetime
    source: str
    model: ScoreModel
    note: str = ""


@dataclass(frozen=True, slots=True)
class ScoreSample:
    """Scores gathered from a gallery for a calibration.

    Attributes:
        pairs: strangers against one person (enrolled faces against other people).
        best: enrolled faces' best score over everybody else (leave their own person out).
        best_size: how many people each ``best`` score is the best over.
        genuine: faces against their own person's other faces.
    """

    pairs: NDArray[np.float64]
    best: NDArray[np.float64]
    best_size: int
    genuine: NDArray[np.float64]


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


def _quantiles(x: NDArray[np.float64]) -> tuple[float, ...]:
    return tuple(float(v) for v in np.quantile(x, _LEVELS))


def fit_tail(scores: NDArray[np.floating[Any]], size: int = 1) -> Tail:
    """A :class:`Tail` fitted to a sample of impostor scores (each the best over ``size``
    people): the top few per cent by a generalized Pareto distribution, by probability
    weighted moments (closed form, numpy only).

    Raises:
        ConfigError: fewer than 30 finite scores.
    """
    x = np.sort(np.asarray(scores, dtype=np.float64)[np.isfinite(scores)])
    n = len(x)
    if n < 2 * _TAIL_MIN:
        raise ConfigError(f"fitting a tail needs at least {2 * _TAIL_MIN} scores, got {n}")
    exceed = int(min(max(_TAIL_FRACTION * n, _TAIL_MIN), _TAIL_MAX, n - 1))
    start = float(x[n - exceed - 1])
    y = x[n - exceed :] - start
    m = len(y)
    a0 = float(y.mean())
    # a1 = E[Y (1 - F(Y))], estimated with the sorted sample's plotting positions.
    a1 = float(np.sum(y * (m - 1 - np.arange(m)) / max(m - 1, 1)) / m)
    if a0 <= 0:
        shape, scale = 0.0, 1e-6
    elif a0 - 2 * a1 <= 1e-12:
        shape, scale = 0.0, a0
    else:
        shape = 2.0 - a0 / (a0 - 2.0 * a1)
        scale = 2.0 * a0 * a1 / (a0 - 2.0 * a1)
        if not -1.0 < shape < 0.5:  # outside where the moments exist: an exponential tail
            shape, scale = 0.0, a0
    return Tail(
        size=int(size),
        start=start,
        rate=m / n,
        shape=float(shape),
        scale=float(max(scale, 1e-6)),
        quantiles=_quantiles(x),
        count=n,
    )


def fit_genuine(scores: NDArray[np.floating[Any]]) -> GenuineModel:
    """A :class:`GenuineModel` of genuine scores.

    Raises:
        ConfigError: fewer than 2 finite scores.
    """
    x = np.asarray(scores, dtype=np.float64)[np.isfinite(scores)]
    if len(x) < 2:
        raise ConfigError(f"fitting genuine scores needs at least 2, got {len(x)}")
    return GenuineModel(
        mean=float(x.mean()), sd=float(max(x.std(ddof=1), 0.02)), quantiles=_quantiles(x), count=len(x)
    )


#: A search of the gallery: for each row of a matrix of unit templates, the most similar
#: people as (person id, similarity), best first (at least two), as identify ranks them.
Search = Callable[[NDArray[np.float32]], list[list[tuple[int, float]]]]


def gallery_scores(
    owners: NDArray[np.int64],
    templates: NDArray[np.float32],
    search: Search,
    *,
    seed: int = 0,
    probes: int = 5000,
    opponents: int = 2000,
    pair_probes: int = 5000,
    batch: int = 1000,
) -> ScoreSample:
    """Impostor and genuine scores from the gallery itself.

    Args:
        owners: the person of each template (int64[F]).
        templates: the unit templates (float32[F, D]).
        search: the gallery's own search (so ``best`` is what identify would see).
        seed: the sampling's seed (a calibration is repeatable).
        probes: at most this many enrolled faces play strangers (:func:`probes_for`).
        opponents: at most this many people are the "one person" of the pair scores.
        pair_probes: at most this many of the probes score against each opponent.
        batch: probes searched at a time.

    ``best``: each probe's best score over everybody but its own person (N - 1 people);
    ``pairs``: probes against each sampled opponent (the best of the opponent's templates);
    ``genuine``: faces of people with several faces against the best of their others.
    """
    rng = np.random.default_rng(seed)
    count = len(owners)
    people = np.unique(owners)
    chosen = np.sort(rng.choice(count, size=min(probes, count), replace=False))
    best: list[float] = []
    for start in range(0, len(chosen), batch):
        part = chosen[start : start + batch]
        for own, found in zip(owners[part], search(templates[part]), strict=True):
            other = next((sim for pid, sim in found if pid != own), None)
            if other is not None:
                best.append(other)
    opponent_ids = np.sort(rng.choice(people, size=min(opponents, len(people)), replace=False))
    columns = np.flatnonzero(np.isin(owners, opponent_ids))
    columns = columns[np.argsort(owners[columns], kind="stable")]
    column_owner = owners[columns]
    starts = np.flatnonzero(np.r_[True, column_owner[1:] != column_owner[:-1]])
    pairs: list[NDArray[np.float64]] = []
    pair_chosen = (
        chosen if len(chosen) <= pair_probes else np.sort(rng.choice(chosen, pair_probes, replace=False))
    )
    for start in range(0, len(pair_chosen), batch):
        part = pair_chosen[start : start + batch]
        sims = templates[part] @ templates[columns].T
        per_person = np.maximum.reduceat(sims, starts, axis=1).astype(np.float64)
        own = owners[part][:, None] == column_owner[starts][None, :]
        pairs.append(per_person[~own])
    genuine: list[float] = []
    order = np.argsort(owners, kind="stable")
    sorted_owners = owners[order]
    bounds = np.flatnonzero(np.r_[True, sorted_owners[1:] != sorted_owners[:-1], True])
    several = [(a, b) for a, b in itertools.pairwise(bounds) if b - a >= 2]
    if len(several) > probes:
        several = [several[i] for i in sorted(rng.choice(len(several), size=probes, replace=False))]
    for a, b in several:
        own_templates = templates[order[a:b]]
        sims = own_templates @ own_templates.T
        np.fill_diagonal(sims, -np.inf)
        genuine.extend(float(v) for v in sims.max(axis=1))
    return ScoreSample(
        pairs=np.concatenate(pairs) if pairs else np.zeros(0),
        best=np.asarray(best, dtype=np.float64),
        best_size=max(len(people) - 1, 1),
        genuine=np.asarray(genuine, dtype=np.float64),
    )


def probes_for(kind: TargetKind, target: float) -> int:
    """How many enrolled faces should play strangers for a target: enough that about 50 of
    their best scores lie above an FPIR target's threshold (so the tail is fitted where the
    target is, not extrapolated to it), at least 5,000 and at most 100,000; FMR targets rest
    on the pair scores (5,000 probes x 2,000 people), so 5,000."""
    if kind == "fmr":
        return 5000
    return int(min(max(5000, math.ceil(50 / target)), 100_000))


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


# -- the model's prior -------------------------------------------------------------------------


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


# -- as stored -----------------------------------------------------------------------------------


def calibration_fields(calibration: Calibration, model_id: str) -> dict[str, Any]:
    """The columns of a calibration row (facedb.models.CalibrationRow) for this record."""
    return {
        "created_at": calibration.created_at,
        "model_id": model_id,
        "target_kind": calibration.target_kind,
        "target": calibration.target,
        "threshold": calibration.threshold,
        "source": calibration.source,
        "people": calibration.people,
        "faces": calibration.faces,
        "estimated_fpir": calibration.estimated_fpir,
        "estimated_fnir": calibration.estimated_fnir,
        "params": json.dumps({"model": calibration.model.to_json(), "note": calibration.note}),
    }


def calibration_from_row(row: Any) -> Calibration:
    """The record of a stored calibration row (anything with CalibrationRow's attributes)."""
    params = json.loads(row.params)
    created: datetime = row.created_at
    if created.tzinfo is None:  # SQLite keeps no zone: the rows are written in UTC
        created = created.replace(tzinfo=UTC)
    kind: TargetKind = "fmr" if row.target_kind == "fmr" else "fpir"
    return Calibration(
        threshold=float(row.threshold),
        target=float(row.target),
        target_kind=kind,
        estimated_fpir=None if row.estimated_fpir is None else float(row.estimated_fpir),
        estimated_fnir=None if row.estimated_fnir is None else float(row.estimated_fnir),
        people=int(row.people),
        faces=int(row.faces),
        created_at=created,
        source=str(row.source),
        model=ScoreModel.from_json(params["model"]),
        note=str(params.get("note", "")),
    )
