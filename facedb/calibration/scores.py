"""Score models: the distributions of impostor and genuine scores, fitted to samples, and
what is read off them (FPIR, FMR and FNIR at a threshold, the threshold for a target, the
confidence of a name).

All scores are "as identify ranks" (a face against a person is the best over the person's
templates). Impostor tails are modelled by peaks over threshold: below the top few per cent
of the sample the empirical distribution, above it a generalized Pareto tail fitted by
probability weighted moments (Hosking and Wallis, 1987), so that FPIR 1e-3..1e-5 is
extrapolated from the shape of the tail, not from a normal fit of the whole distribution. A
rate measured at one gallery size is carried to another as if the people were independent:
``FPIR_N = 1 - (1 - FPIR_n) ** (N / n)``.

Pure numpy (no scipy).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from facedb.errors import ConfigError

__all__ = ["GenuineModel", "ScoreModel", "Tail", "TargetKind", "fit_genuine", "fit_tail"]

#: What a target counts: false positive identifications of strangers over the whole gallery
#: (``"fpir"``), or false matches of a stranger against one person (``"fmr"``).
TargetKind = Literal["fpir", "fmr"]

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
    quantiles: tuple[float, ...] = field(repr=False)  # 201 numbers
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
    quantiles: tuple[float, ...] = field(repr=False)  # 201 numbers
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
