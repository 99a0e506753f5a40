"""Grouping faces nobody has named by identity: one incremental method for ``discover`` and
for a watch's strangers.

A group is the running mean of its faces' templates (kept as a sum; its direction is the
group's centroid). A new face joins the group whose centroid it is most similar to when that
similarity reaches the threshold, and starts a group of its own otherwise. Faces handed in
together as one photo's (:meth:`Grouping.place_photo`) never join the same group: one photo
does not show a person twice, so two look-alikes side by side stay apart (a cannot-link).

Each face costs one matrix-vector product over the groups (numpy, in blocks), so placing N
faces is O(N x groups) dot products with no pairwise step over faces; adding photos later
extends the groups instead of starting over, since the state is just the groups' sums and
counts (:meth:`Grouping.add_group` reloads them).

Why the mean and not the first face ("leader" clustering): a centroid of several noisy
templates of one person lies closer to each of them than any one of them does, so later faces
of the same person clear the threshold more surely, while another person's faces stay about as
far away. Groups of one person that started apart (before either had many faces) are joined
by :meth:`Grouping.merge`, by average linkage. Measured in docs/discover.md ("Faces nobody has named
yet").
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from facedb.errors import ConfigError

__all__ = ["MIN_MEAN", "Grouping", "bcubed", "pairwise"]

#: The least mean similarity to a group's faces for a face to join it. Measured on synthetic
#: look-alikes (benchmarks/discover.py: two people whose faces score 0.34 to 0.36 on average,
#: the closest pairs of tests.helpers.noisy_identities): at 0.35 (the enrollment gate's
#: min_own_similarity) such a pair joined and pulled others in (pairwise precision 0.94 on one
#: draw of 1,000 identities); at 0.42 none did, recall unchanged (one's own faces score 0.58
#: on average there, and at least 0.56 for any pair on ../shared/faces).
MIN_MEAN = 0.42


@dataclass
class _Slot:
    key: Hashable
    count: int
    photos: set[Hashable]


class Grouping:
    """The groups so far, and where each new face goes.

    Args:
        dimension: the templates' length.
        threshold: cosine similarity to a group's centroid at which a face joins it.
        min_mean: the least mean similarity to the group's faces a face joining it must
            have too. Without it a centroid that drifted between two look-alikes (one face of
            the other joined it) lies close to both, and to their look-alikes, and swallows
            them all: the centroid is nearer to each than their faces are to each other.

    Example:
        >>> g = Grouping(2, 0.8)
        >>> a = g.place(np.array([1.0, 0.0], np.float32), "a")
        >>> g.place(np.array([0.99, 0.141], np.float32), "b") == a
        True
        >>> g.place(np.array([0.0, 1.0], np.float32), "c") == a
        False
    """

    def __init__(self, dimension: int, threshold: float, min_mean: float = MIN_MEAN) -> None:
        if not 0.0 < float(threshold) <= 1.0:
            raise ConfigError(f"the grouping threshold must be in (0, 1], got {threshold}")
        self.dimension = int(dimension)
        self.threshold = float(threshold)
        self.min_mean = float(min_mean)
        self._sums = np.zeros((16, self.dimension), dtype=np.float64)
        self._units = np.zeros((16, self.dimension), dtype=np.float32)
        self._counts = np.zeros(16, dtype=np.float64)
        self._norms = np.zeros(16, dtype=np.float64)
        self._dirty: set[int] = set()  # rows changed since a batch's similarities were taken
        self._slots: list[_Slot | None] = []
        self._index: dict[Hashable, int] = {}
        self._touched: set[Hashable] = set()

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def keys(self) -> list[Hashable]:
        """The groups' keys, oldest first."""
        return [slot.key for slot in self._slots if slot is not None]

    def add_group(
        self,
        key: Hashable,
        total: NDArray[np.floating],
        count: int = 1,
        photos: Sequence[Hashable] = (),
    ) -> None:
        """A group known from before (stored): the sum of its faces' templates (one unit
        template for a group of one), how many they are, and the photos they are in (no other
        face of those joins it)."""
        if key in self._index:
            raise ConfigError(f"group {key!r} is already there")
        vector = np.asarray(total, dtype=np.float64).reshape(-1)
        norm = float(np.linalg.norm(vector))
        if vector.shape != (self.dimension,) or not norm > 0 or not np.isfinite(norm):
            raise ConfigError(f"a group's sum must be a non-zero vector of {self.dimension} numbers")
        row = self._new_row(key, max(int(count), 1), set(photos))
        self._sums[row] = vector
        self._renorm(row)

    def remove(self, key: Hashable) -> None:
        """Forgets a group (named, dismissed, or a watch's stranger never confirmed)."""
        row = self._index.pop(key, None)
        if row is not None:
            self._slots[row] = None
            self._units[row] = 0.0
            self._sums[row] = 0.0
            self._counts[row] = 0.0
            self._norms[row] = 0.0

    def rename(self, key: Hashable, new_key: Hashable) -> None:
        """Gives a group another key (a new group's stored id)."""
        if new_key in self._index:
            raise ConfigError(f"group {new_key!r} is already there")
        row = self._index.pop(key)
        slot = self._slots[row]
        assert slot is not None
        slot.key = new_key
        self._index[new_key] = row
        if key in self._touched:
            self._touched.discard(key)
            self._touched.add(new_key)

    def centroid(self, key: Hashable) -> NDArray[np.float32]:
        """The unit centroid of a group."""
        unit: NDArray[np.float32] = self._units[self._index[key]].copy()
        return unit

    def count(self, key: Hashable) -> int:
        """How many faces a group's mean is of."""
        slot = self._slots[self._index[key]]
        assert slot is not None
        return slot.count

    def place(self, template: NDArray[np.floating], new_key: Hashable) -> Hashable:
        """Puts one face in its group (``new_key`` names the group it starts, if it starts
        one); the key of the group it went to."""
        return self.place_photo([template], [new_key])[0]

    def place_photo(
        self,
        templates: Sequence[NDArray[np.floating]],
        new_keys: Sequence[Hashable],
        photo: Hashable | None = None,
    ) -> list[Hashable]:
        """Puts the faces of one photo in their groups, at most one face per group and none
        in a group that already has a face of ``photo``: the pairs (face, group) are taken
        best first, and a face whose best free group is below the threshold (or whose mean
        similarity to the group's faces is below ``min_mean``) starts a group (keyed by its
        ``new_keys`` entry)."""
        return self.place_photos([(templates, new_keys, photo)])[0]

    def place_photos(
        self,
        photos: Sequence[tuple[Sequence[NDArray[np.floating]], Sequence[Hashable], Hashable | None]],
    ) -> list[list[Hashable]]:
        """:meth:`place_photo` for several photos, one after the other, with the same result:
        the similarities of all their faces to the groups are one matrix product (which reads
        the groups once, not once per face), corrected for the groups the earlier photos of
        the call changed."""
        for templates, new_keys, _ in photos:
            if len(templates) != len(new_keys):
                raise ConfigError("place_photo needs one new key per template")
        rows = [
            np.asarray(t, dtype=np.float32).reshape(1, -1) for templates, _, _ in photos for t in templates
        ]
        if not rows:
            return [[] for _ in photos]
        everything = np.vstack(rows)
        start = len(self._slots)
        base = everything @ self._units[:start].T if start else np.zeros((len(everything), 0), np.float32)
        self._dirty = set()
        out: list[list[Hashable]] = []
        offset = 0
        for templates, new_keys, photo in photos:
            matrix = everything[offset : offset + len(templates)]
            sims = np.full((len(templates), len(self._slots)), -1.0, dtype=np.float32)
            sims[:, :start] = base[offset : offset + len(templates)]
            offset += len(templates)
            fresh = sorted(self._dirty | set(range(start, len(self._slots))))
            if fresh:
                sims[:, fresh] = matrix @ self._units[fresh].T
            out.append(self._assign(matrix, sims, new_keys, photo))
        return out

    def _assign(
        self,
        matrix: NDArray[np.float32],
        sims: NDArray[np.float32],
        new_keys: Sequence[Hashable],
        photo: Hashable | None,
    ) -> list[Hashable]:
        """One photo's faces to their groups, given their similarities to every row."""
        chosen: list[Hashable | None] = [None] * len(matrix)
        if sims.size:
            used = sims.shape[1]
            with np.errstate(divide="ignore", invalid="ignore"):
                mean = sims * (self._norms[:used] / self._counts[:used])  # to the faces, on average
            faces, rows = np.nonzero((sims >= self.threshold) & (mean >= self.min_mean))
            order = np.argsort(-sims[faces, rows], kind="stable")
            taken: set[int] = set()
            for i in order:
                face, row = int(faces[i]), int(rows[i])
                slot = self._slots[row]
                if chosen[face] is not None or row in taken or slot is None:
                    continue
                if photo is not None and photo in slot.photos:
                    continue
                chosen[face] = slot.key
                taken.add(row)
        out: list[Hashable] = []
        for template, key, new_key in zip(matrix, chosen, new_keys, strict=True):
            if key is None:
                key = new_key
                self._new_row(key, 0, set())
            self._join(key, template, photo)
            out.append(key)
        return out

    def join(self, key: Hashable, template: NDArray[np.floating], photo: Hashable | None = None) -> None:
        """Adds a face to a given group (its centroid moves towards it)."""
        self._join(key, np.asarray(template, dtype=np.float32).reshape(-1), photo)

    def merge(self) -> list[tuple[Hashable, Hashable]]:
        """Joins each group changed since the last merge with the group whose faces are, on
        average, at least the threshold similar to its own (average linkage: the mean
        similarity over every pair of a face of one and a face of the other, from the two
        sums) and that shares no photo with it: two groups of one person that started apart
        before either had many faces. Not the centroids' similarity: a centroid is freed of
        its faces' noise, so two look-alikes' centroids are closer than any two of their faces
        and would join. The smaller group goes into the bigger; ``(kept, absorbed)`` for each
        join, in order. The changed groups' linkages are matrix products of 256 groups at a
        time against all, corrected for the groups joined meanwhile."""
        joins: list[tuple[Hashable, Hashable]] = []
        queue = [k for k in self._touched if k in self._index]
        self._touched = set()
        block = 256
        for begin in range(0, len(queue), block):
            keys = [k for k in queue[begin : begin + block] if k in self._index]
            if not keys:
                continue
            used = len(self._slots)
            rows = [self._index[k] for k in keys]
            counts = self._counts[:used]
            with np.errstate(divide="ignore", invalid="ignore"):
                table = (self._sums[rows] @ self._sums[:used].T) / (counts[rows, None] * counts[None, :])
            self._dirty = set()
            pending = list(zip(keys, table, strict=True))
            while pending:
                key, linkage = pending.pop()
                if key not in self._index:
                    continue
                row = self._index[key]
                if row in self._dirty:  # it grew by a join meanwhile: its row again, exactly
                    with np.errstate(divide="ignore", invalid="ignore"):
                        linkage = (self._sums[:used] @ self._sums[row]) / (counts * counts[row])
                else:
                    linkage = linkage.copy()
                    for other in self._dirty:
                        linkage[other] = (self._sums[other] @ self._sums[row]) / (counts[other] * counts[row])
                linkage[~np.isfinite(linkage)] = -1.0
                linkage[row] = -1.0
                for other in np.argsort(-linkage, kind="stable"):
                    if linkage[other] < self.threshold:
                        break
                    a, b = self._slots[row], self._slots[int(other)]
                    if a is None or b is None or a.photos & b.photos:
                        continue
                    kept, gone = (a, b) if a.count >= b.count else (b, a)
                    self._absorb(kept.key, gone.key)
                    joins.append((kept.key, gone.key))
                    pending.append((kept.key, linkage))  # its row is dirty: recomputed
                    break
        return joins

    def _absorb(self, kept: Hashable, gone: Hashable) -> None:
        row, old = self._index[kept], self._index[gone]
        slot, other = self._slots[row], self._slots[old]
        assert slot is not None and other is not None
        self._sums[row] += self._sums[old]
        slot.count += other.count
        self._counts[row] = slot.count
        slot.photos |= other.photos
        self._renorm(row)
        self.remove(gone)

    def _join(self, key: Hashable, template: NDArray[np.float32], photo: Hashable | None) -> None:
        row = self._index[key]
        slot = self._slots[row]
        assert slot is not None
        self._sums[row] += template
        slot.count += 1
        self._counts[row] = slot.count
        if photo is not None:
            slot.photos.add(photo)
        self._touched.add(key)
        self._renorm(row)

    def _renorm(self, row: int) -> None:
        """A row's sum changed: its centroid and norm follow, and it is dirty."""
        norm = float(np.linalg.norm(self._sums[row]))
        self._norms[row] = norm
        self._units[row] = (self._sums[row] / norm).astype(np.float32) if norm > 0 else 0.0
        self._dirty.add(row)

    def _new_row(self, key: Hashable, count: int, photos: set[Hashable]) -> int:
        if key in self._index:
            raise ConfigError(f"group {key!r} is already there")
        row = len(self._slots)
        if row == len(self._sums):
            self._sums = np.vstack([self._sums, np.zeros_like(self._sums)])
            self._units = np.vstack([self._units, np.zeros_like(self._units)])
            self._counts = np.concatenate([self._counts, np.zeros_like(self._counts)])
            self._norms = np.concatenate([self._norms, np.zeros_like(self._norms)])
        self._slots.append(_Slot(key, count, photos))
        self._counts[row] = count
        self._index[key] = row
        return row


def _pairs_same(labels: Sequence[Hashable]) -> dict[Hashable, int]:
    sizes: dict[Hashable, int] = {}
    for label in labels:
        sizes[label] = sizes.get(label, 0) + 1
    return sizes


def pairwise(truth: Sequence[Hashable], found: Sequence[Hashable]) -> tuple[float, float]:
    """Pairwise precision and recall of a grouping: of the pairs of faces put in one group,
    the share that are one person; of the pairs that are one person, the share put in one
    group (1.0 when there are no such pairs). Counted from group sizes, not over pairs.

    Example:
        >>> pairwise(["a", "a", "b"], [1, 1, 1])
        (0.3333333333333333, 1.0)
    """
    if len(truth) != len(found):
        raise ConfigError("pairwise needs one found label per true label")

    def pairs(sizes: dict[Hashable, int]) -> int:
        return sum(n * (n - 1) // 2 for n in sizes.values())

    both = pairs(_pairs_same(list(zip(truth, found, strict=True))))
    grouped, same = pairs(_pairs_same(found)), pairs(_pairs_same(truth))
    return (both / grouped if grouped else 1.0), (both / same if same else 1.0)


def bcubed(truth: Sequence[Hashable], found: Sequence[Hashable]) -> tuple[float, float, float]:
    """BCubed precision, recall and F of a grouping (Amigo et al., 2009): per face, the share
    of its group that is its person, and the share of its person that is in its group,
    averaged over faces.

    Example:
        >>> bcubed(["a", "a", "b"], [1, 1, 2])
        (1.0, 1.0, 1.0)
    """
    if len(truth) != len(found):
        raise ConfigError("bcubed needs one found label per true label")
    if not truth:
        return 1.0, 1.0, 1.0
    both = _pairs_same(list(zip(truth, found, strict=True)))
    by_truth, by_found = _pairs_same(truth), _pairs_same(found)
    n = len(truth)
    precision = sum(both[(t, f)] / by_found[f] for t, f in zip(truth, found, strict=True)) / n
    recall = sum(both[(t, f)] / by_truth[t] for t, f in zip(truth, found, strict=True)) / n
    f_score = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f_score
