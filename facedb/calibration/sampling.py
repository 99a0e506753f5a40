"""The scores a calibration is fitted on, gathered from the gallery itself: strangers played
by enrolled faces (against one person, and against the whole gallery but their own person),
and faces against their own person's other faces.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from facedb.calibration.scores import TargetKind

__all__ = ["ScoreSample", "Search", "gallery_scores", "probes_for"]


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
