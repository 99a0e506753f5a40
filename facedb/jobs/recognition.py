"""Who is this: search by template, identify the faces of photos, verify two photos, all at
the gallery's threshold in force, with the people each face was said not to be left out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from facedb.context import GalleryContext
from facedb.engine import Color, Face, ImageInput, Verification
from facedb.ranking import assign_faces, check_k, drop_rejected, faces_to_fetch, rank_people
from facedb.results import Candidate, Identification, Status, person_from_fields
from facedb.templates import check_matrix, unit_rows
from facedb.vectors import Consistency, check_consistency

__all__ = ["Recognition"]


class Recognition:
    """Search, identify and verify for one gallery (:class:`facedb.FaceDB` delegates here)."""

    def __init__(
        self, ctx: GalleryContext, announce: Callable[[Sequence[Identification]], None] | None = None
    ) -> None:
        self.ctx = ctx
        #: Told what identify named (facedb.jobs.events: person.identified, when wanted).
        self.announce = announce

    def search(
        self, embeddings: NDArray[np.floating[Any]], k: int = 5, *, consistency: Consistency | None = None
    ) -> list[list[Candidate]]:
        """The k people most similar to each template (no photo needed), best first.

        Args:
            embeddings: float32[D] or float32[N, D]; an all-zero row resembles nobody ([]).
            consistency: ``"strong"`` to find every template another process added before
                this call, as :meth:`identify`.

        Raises:
            ConfigError: wrong shape, NaN or infinite values (as float32), a norm beyond
                float32's range, k outside 1..MAX_K (4096), or a consistency other than
                None or ``"strong"``.
        """
        k = check_k(k)
        consistency = check_consistency(consistency)
        self.ctx.sync()
        matrix = check_matrix(np.atleast_2d(np.asarray(embeddings)), self.ctx.facts.dimension, "embeddings")
        # An all-zero template has no direction: nobody resembles it (an empty answer for its
        # row), where a stored one would be refused.
        nonzero = np.abs(matrix).max(axis=1) > 0
        if not nonzero.any():
            return [[] for _ in range(len(matrix))]
        probes = unit_rows(matrix[nonzero], "embeddings")
        found = iter(self.named_candidates(probes, k, consistency))
        return [next(found) if keep else [] for keep in nonzero]

    def candidates(
        self, matrix: NDArray[np.float32], k: int, consistency: Consistency | None = None
    ) -> list[list[Candidate]]:
        """The k best people for each row, as the vector store and SQL say now."""
        return self._ranked(matrix, k, consistency)[0]

    def named_candidates(
        self, matrix: NDArray[np.float32], k: int, consistency: Consistency | None = None
    ) -> list[list[Candidate]]:
        """:meth:`candidates` without the people each row was said not to be
        (:meth:`respect_rejections`)."""
        candidates, rejected = self._ranked(matrix, k, consistency)
        return self.respect_rejections(matrix, candidates, rejected)

    def _ranked(
        self, matrix: NDArray[np.float32], k: int, consistency: Consistency | None
    ) -> tuple[list[list[Candidate]], set[int]]:
        """The k best people for each row, and which of the people found have negative
        examples (read with their owners, in the same query)."""
        # No len() here: counting a Milvus collection is a consistent read that waits for
        # the server's next time tick, 100 ms or more.
        sims, ids = self.ctx.vectors.search(matrix, faces_to_fetch(k), consistency=consistency)
        # Hits are checked against SQL: a face removed by any process is never returned.
        owners, rows, rejected = self.ctx.store.face_owners(sorted({int(i) for i in ids.ravel() if i >= 0}))
        order = rank_people(sims, ids, owners, k)
        # Only the people ranked become Person objects (a search fetches 4k faces' owners).
        people = {pid: person_from_fields(*rows[pid]) for pid in {pid for best in order for pid, _ in best}}
        return [[Candidate(people[pid], sim) for pid, sim in best] for best in order], rejected

    def identify(
        self,
        photo: ImageInput | list[ImageInput] | tuple[ImageInput, ...],
        k: int = 5,
        *,
        threshold: float | None = None,
        color: Color = "bgr",
        consistency: Consistency | None = None,
    ) -> list[Identification] | list[list[Identification]]:
        """Who each face in the photo is, one Identification per face, left to right; for a
        list (or tuple) of photos, one such list per photo, in order (detected as a batch).

        In one photo a person is named at most once: faces are assigned jointly, best match
        first. A face whose best two people are within ``ambiguity_margin`` is ambiguous
        and named nobody. A face below the quality bar (``Face.quality_reasons``) has status
        ``"poor_quality"`` and names nobody, whatever its candidates (kept for information).
        A photo without faces gives ``[]``.

        Freshness: this process's own writes are always searched. Another process's
        additions are searched at once on the local FAISS index (every call first catches it
        up with the database, so ``consistency`` changes nothing there) and, on Milvus,
        within its staleness bound (docs/scaling.md); ``consistency="strong"`` makes
        Milvus search every addition acknowledged before the call, at a stated cost per
        search (docs/scaling.md), e.g. a turnstile that must know a person enrolled a moment ago
        elsewhere.

        Raises:
            ConfigError: ``k`` outside 1..4096, a threshold outside 0..1, a bad ``color``,
                or a consistency other than None or ``"strong"``.
            ImageError: a photo that cannot be read (in a list: the first such photo; to
                answer the others, identify them one by one).
        """
        limit = self.ctx.limit(threshold)
        k = check_k(k)
        consistency = check_consistency(consistency)
        engine = self.ctx.engine
        if isinstance(photo, list | tuple):
            found = engine.detect_many(photo, color=color)
            answers = [
                self.identify_detected(cast(list[Face], faces), k, limit, consistency) for faces in found
            ]
            if self.announce is not None:
                self.announce([r for answer in answers for r in answer])
            return answers
        answer = self.identify_detected(engine.detect(photo, color=color), k, limit, consistency)
        if self.announce is not None:
            self.announce(answer)
        return answer

    def identify_faces(
        self,
        faces: Sequence[Face],
        k: int = 5,
        *,
        threshold: float | None = None,
        consistency: Consistency | None = None,
    ) -> list[Identification]:
        """:meth:`identify` for faces already detected (by this gallery's engine, from one
        photo): the same answer as ``identify`` of their photo. For callers that run the
        recognizer themselves, e.g. on the faces of several photos in one batch.

        Raises:
            ConfigError: ``k`` outside 1..4096, a threshold outside 0..1, or a consistency
                other than None or ``"strong"``.
        """
        limit = self.ctx.limit(threshold)
        return self.identify_detected(list(faces), check_k(k), limit, check_consistency(consistency))

    def verify(
        self, a: ImageInput, b: ImageInput, *, threshold: float | None = None, color: Color = "bgr"
    ) -> Verification:
        """Whether the largest faces of two photos are the same person, at the threshold in
        force in this gallery (a calibration's, a user's, else the model's), the one
        :meth:`identify` names people at; ``threshold`` overrides it for this call.

        Raises:
            NoFaceError: either photo shows no face (the message names which).
            ConfigError: a threshold outside 0..1.
        """
        self.ctx.check_open()
        return self.ctx.engine.verify(a, b, threshold=self.ctx.limit(threshold), color=color)

    def identify_detected(
        self, faces: list[Face], k: int, limit: float, consistency: Consistency | None = None
    ) -> list[Identification]:
        """The answer for the faces of one photo (identify's body, after detection)."""
        if not faces:
            return []
        self.ctx.sync()
        matrix = np.vstack([f.embedding for f in faces]).astype(np.float32)
        candidates = self.named_candidates(matrix, max(k, 2), consistency)
        # A face below the quality bar names nobody, so it cannot take a person from another.
        assigned = assign_faces(
            [
                [] if face.is_poor_quality else [(c.person.id, c.similarity) for c in cands]
                for face, cands in zip(faces, candidates, strict=True)
            ],
            limit,
            self.ctx.ambiguity_margin,
        )
        model = self.ctx.score_model()
        named = [a.similarity for a in assigned if a.person_id is not None and a.similarity is not None]
        confidences = iter(model.confidence(named, max(self.ctx.people_seen, 1)).tolist() if named else [])
        results = []
        for face, cands, a in zip(faces, candidates, assigned, strict=True):
            person = None
            similarity = cands[0].similarity if cands else 0.0
            if a.person_id is not None and a.similarity is not None:
                person = next(c.person for c in cands if c.person.id == a.person_id)
                similarity = a.similarity
            status: Status = (
                "poor_quality"
                if face.is_poor_quality
                else "named"
                if person is not None
                else "ambiguous"
                if a.ambiguous
                else "unknown"
            )
            confidence = next(confidences) if person is not None else None
            results.append(
                Identification(face, person, similarity, cands[:k], a.ambiguous, status, confidence, limit)
            )
        return results

    def respect_rejections(
        self, matrix: NDArray[np.float32], candidates: list[list[Candidate]], rejected: set[int] | None = None
    ) -> list[list[Candidate]]:
        """The candidates without those each face was said not to be (:func:`drop_rejected`):
        the negative examples of the candidates only, read in one indexed query, so that a
        rejection made by any process counts at once. ``rejected``: the candidates known
        (in the owners' snapshot) to have negative examples; no query when none does."""
        people = sorted({c.person.id for cands in candidates for c in cands})
        if rejected is not None:
            people = [p for p in people if p in rejected]
            if not people:
                return candidates
        with self.ctx.store.read() as s:
            owners, negatives = self.ctx.store.negatives(s, people, self.ctx.facts.dimension)
        if len(owners) == 0:
            return candidates
        sims = matrix @ negatives.T
        closest = [{int(pid): float(row[owners == pid].max()) for pid in np.unique(owners)} for row in sims]
        kept = drop_rejected([[(c.person.id, c.similarity) for c in cands] for cands in candidates], closest)
        return [
            [c for c in cands if c.person.id in {pid for pid, _ in keep}]
            for cands, keep in zip(candidates, kept, strict=True)
        ]
