"""Keeping a gallery right: the threshold calibrated on its own templates, the consistency of
SQL and the vector index checked (and repaired), the index rebuilt, and its stats."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from facedb import calibration
from facedb.calibration import Calibration
from facedb.context import GalleryContext
from facedb.crops import png_crop
from facedb.encryption import Cipher
from facedb.engine import FaceEngine, pack_engine
from facedb.engine.packs import check_pack
from facedb.errors import ConfigError, GalleryError
from facedb.ranking import faces_to_fetch, rank_people
from facedb.results import CheckReport, ReembedReport
from facedb.store.reembeds import NOT_YET

__all__ = ["Maintenance"]

log = logging.getLogger("facedb")


class Maintenance:
    """Calibration, check, index and stats of one gallery (:class:`facedb.FaceDB` delegates
    here)."""

    def __init__(self, ctx: GalleryContext) -> None:
        self.ctx = ctx

    def sync_vectors(self) -> None:
        """Brings the vector store up to date with the SQL side now: replays the change log
        after the generation it holds. Every call does this first, and a write through
        :attr:`facedb.FaceDB.writes` updates the vector store itself, so only a process that
        wants another's writes in its index before its next call needs it.

        Example::

            with db.writes.change() as change:
                ids = db.store.add_faces(change.session, owners, db.facts.model_id, templates, infos)
                change.added(ids, templates)
            other_db.sync_vectors()  # another process's FaceDB on the same gallery
        """
        with self.ctx.lock:
            self.ctx.sync()

    def calibrate(
        self, *, target_fpir: float | None = None, target_fmr: float | None = None, seed: int = 0
    ) -> Calibration:
        """Chooses the naming threshold for a target error rate from the gallery's own
        templates (the model's prior while it is small), stores it, and puts it in force for
        every process (docs/calibration.md).

        Args:
            target_fpir: the share of strangers' searches that may name somebody (e.g. 0.01).
            target_fmr: or the share of stranger-against-person comparisons (e.g. 1e-4).
            seed: the sampling's seed.

        Example:
            >>> cal = db.calibrate(target_fpir=0.01)
            >>> cal.threshold, cal.estimated_fpir, cal.source

        Raises:
            ConfigError: both targets or neither, or one outside (0, 1).
        """
        self.ctx.check_writable()
        kind, target = calibration.check_target(target_fpir, target_fmr)
        self.ctx.sync()
        with self.ctx.store.read() as s:
            face_ids, owners, matrix = self.ctx.store.owned_templates(s, self.ctx.facts.dimension)
        owner_of = dict(zip(face_ids.tolist(), owners.tolist(), strict=True))

        def ranked(rows: NDArray[np.float32]) -> list[list[tuple[int, float]]]:
            # As identify ranks (the best over a person's templates), owners known already.
            sims, ids = self.ctx.vectors.search(rows, faces_to_fetch(2))
            return rank_people(sims, ids, owner_of, 2)

        people = len(np.unique(owners))
        sample = None
        if people >= calibration.MIN_PEOPLE:
            probes = calibration.probes_for(kind, target)
            sample = calibration.gallery_scores(owners, matrix, ranked, seed=seed, probes=probes)
        found = calibration.calibrate(
            sample,
            kind=kind,
            target=target,
            people=people,
            faces=len(owners),
            prior=self.ctx.prior,
            created_at=datetime.now(UTC),
        )
        with self.ctx.writes.change() as change:
            fields = calibration.calibration_fields(found, self.ctx.facts.model_id)
            self.ctx.store.add_calibration(change.session, fields)
            change.bump()  # every process reloads the threshold in force
        self.ctx.refresh_calibration()
        return found

    def check(self, *, repair: bool = True) -> CheckReport:
        """Compares the SQL faces with the vector index, ids and content (a digest of every
        template); rebuilds the index when they disagree (``repair=False``, or a read-only
        gallery, only reports)."""
        self.ctx.check_open()
        repair = repair and not self.ctx.read_only
        with self.ctx.lock:
            self.ctx.vectors.sync(self.ctx.store)
            with self.ctx.store.read() as s:
                sql_ids = self.ctx.store.face_ids(s)
                people = self.ctx.store.count_people(s)
                models = self.ctx.store.face_models(s)
            indexed = self.ctx.vectors.ids()
            with self.ctx.store.read() as s:
                sql_digest, unusable_ids = self.ctx.store.audit_templates(s, self.ctx.facts.dimension)
            unusable = set(unusable_ids)
            missing = sql_ids - indexed - unusable
            extra = indexed - (sql_ids - unusable)
            problems = []
            if unusable:
                shown = ", ".join(str(i) for i in sorted(unusable)[:10])
                problems.append(
                    f"{len(unusable)} face(s) hold unusable templates (NaN, infinite or zero; ids {shown}), "
                    "skipped by the index: remove them (remove-face) and enroll those people again"
                )
            if missing:
                problems.append(f"{len(missing)} face(s) in the database are missing from the index")
            if extra:
                problems.append(f"{len(extra)} face(s) in the index are not in the database")
            differ = False
            if not missing and not extra:
                differ = self.ctx.vectors.digest() != sql_digest
                if differ:
                    problems.append("the index holds other templates than the database under the same ids")
            foreign = models - {self.ctx.facts.model_id}
            if foreign:
                problems.append(f"faces of other models in the database: {', '.join(sorted(foreign))}")
            repaired = False
            if (missing or extra or differ) and repair:
                self.ctx.vectors.rebuild(self.ctx.store)
                repaired = True
            return CheckReport(
                ok=not problems,
                people=people,
                faces=len(sql_ids),
                indexed=len(self.ctx.vectors),
                missing_from_index=len(missing),
                extra_in_index=len(extra),
                repaired=repaired,
                index_kind=self.ctx.vectors.kind,
                problems=problems,
            )

    def rebuild_index(self) -> None:
        """Rebuilds the vector index from the database's templates."""
        self.ctx.check_writable()
        with self.ctx.lock:
            self.ctx.vectors.rebuild(self.ctx.store)

    def rekey(self, key: str | bytes | None) -> int:
        """Seals the gallery with a new key: every template and thumbnail in SQL is rewritten
        under it in one transaction, the vector index is rebuilt sealed with it and the old
        index files are zeroed, then deleted. ``key=None`` decrypts the gallery; rekeying a
        gallery without a key encrypts it. Returns how many stored values were rewritten.

        Other processes that have the gallery open with the old key fail with
        :class:`~facedb.errors.EncryptionKeyError` at their next call (nothing they would
        write under the old key can commit); reopen them with the new key. Rewriting costs
        about one rebuild of the index (docs/gallery.md, "Encryption at rest").

        Example:
            >>> key = facedb.new_key()   # keep it apart from the gallery
            >>> db.rekey(key)            # then open with FaceDB(path, key=key)

        Raises:
            ConfigError: not a key.
            EncryptionKeyError: a stored value that the current key does not open (nothing
                is changed).
        """
        self.ctx.check_writable()
        new = None if key is None else Cipher(key)
        with self.ctx.lock:
            self.ctx.sync()
            with self.ctx.writes.change() as change:
                rewritten = self.ctx.store.reseal(change.session, new)
                self.ctx.store.set_key_id(change.session, None if new is None else new.key_id)
                change.rekeyed()
                change.erased()  # the old values' pages: checkpointed out of the WAL
            self.ctx.store.use_cipher(new)
            self.ctx.vectors.rekey(self.ctx.store)
        log.info("resealed %s: %d value(s) rewritten", self.ctx.location, rewritten)
        return rewritten

    def reembed(
        self,
        pack: str | FaceEngine,
        *,
        batch: int = 256,
        drop_missing: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> ReembedReport:
        """Moves the gallery to another model pack, keeping its people: every face's
        template is made anew by ``pack``'s recognizer from the aligned crop the gallery kept
        of it (facedb.crops), ``batch`` faces at a time, each batch staged in its own
        transaction (a crash loses at most one batch: run it again and it resumes). When every
        face has its new template, one transaction swaps them all in, with the gallery's
        model and pack; the index is then rebuilt and the old index files are zeroed. This
        gallery goes on with the new pack; other processes that have it open get a
        GalleryError at their next call and must reopen it.

        What keeps no crop (faces enrolled before crops were kept or with ``crops=False``,
        imported templates, negative examples, discovered groups) cannot be made anew: it is
        listed in a GalleryError and nothing is swapped, unless ``drop_missing=True``, which
        deletes it in the swap (the report lists it). Visits keep their records; their
        templates (for a later confirm or reject) are cleared.

        Args:
            pack: the pack's name (``"sface"``, ``"buffalo_s"``) or an engine of it.
            batch: faces per staged transaction.
            drop_missing: delete what cannot be made anew instead of refusing.
            progress: called with (faces done, faces) after each batch.

        Raises:
            ConfigError: no such pack, or a bad ``batch``.
            GalleryError: something cannot be made anew (listed), or the gallery's vectors
                are in Milvus (copy it to a folder gallery first).
        """
        started = time.monotonic()
        self.ctx.check_writable()
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ConfigError(f"batch must be a positive number of faces, got {batch!r}")
        target = pack if isinstance(pack, FaceEngine) else pack_engine(check_pack(pack).name)
        if self.ctx.vectors.kind.startswith("milvus"):
            raise GalleryError(
                f"reembed works on galleries with a FAISS index; {self.ctx.location} keeps its vectors "
                f"in {self.ctx.vectors.location}: `facedb copy` it to a folder gallery, reembed that, "
                "and copy it back"
            )
        store, model = self.ctx.store, target.model_id
        with self.ctx.writes.change() as change:
            store.forget_reembeds(change.session, keep=model)
        with store.read() as s:
            total, resumed = store.reembed_progress(s, model)
        done, after = resumed, 0
        while True:
            with store.read() as s:
                todo = store.crops_to_reembed(s, model, after, batch)
            if not todo:
                break
            after = todo[-1][0]
            crops = np.stack([png_crop(data, face=face_id) for face_id, data in todo])
            templates = target.embed_crops(crops)
            with self.ctx.writes.change() as change:
                store.stage_reembeds(change.session, model, [face_id for face_id, _ in todo], templates)
            done += len(todo)
            if progress is not None:
                progress(done, total)
        with self.ctx.lock:
            self.ctx.sync()
            with self.ctx.writes.change() as change:
                store.check_key(change.session)  # the key and the old model, before the swap
                # Under the write's lock: what another process added meanwhile is seen here, and
                # is either made anew already or refused, never dropped unasked.
                missing = store.not_reembedded(change.session, model)
                dropped = [line for lines in missing.values() for line in lines]
                # A face with a crop is never dropped: it was enrolled meanwhile, and a rerun makes it.
                if dropped and (not drop_missing or any(NOT_YET in line for line in dropped)):
                    counts = ", ".join(f"{len(v)} {k}" for k, v in missing.items() if v)
                    shown = "; ".join(dropped[:10]) + ("; ..." if len(dropped) > 10 else "")
                    raise GalleryError(
                        f"cannot move {self.ctx.location} to the {target.pack} pack: {counts} have no "
                        f"new template ({shown}). Nothing was swapped; the {done} template(s) made are "
                        "kept, so a rerun resumes (and makes those enrolled meanwhile). Rerun with "
                        "drop_missing=True (--drop-missing) to delete what keeps no crop, or remove it first"
                    )
                swapped, deleted, cleared = store.swap_reembeds(
                    change.session, model, target.embedding_size, target.pack
                )
                change.removed(deleted)
                change.rekeyed()  # the model check before the commit was made above
                change.erased()
        log.info(
            "re-embedded %s with the %s pack: %d face(s), %d dropped",
            self.ctx.location,
            target.pack,
            swapped,
            len(deleted),
        )
        return ReembedReport(
            pack=target.pack,
            model=model,
            faces=swapped,
            resumed=resumed,
            dropped=dropped,
            visits_cleared=cleared,
            seconds=time.monotonic() - started,
        )

    def stats(self, *, catch_up: bool = True) -> dict[str, Any]:
        """Sizes and settings: people, faces, model, index kind and folder, the threshold in
        force and where it came from (``threshold_source``, ``calibration_*``; a
        ``calibration_warning`` once the gallery has grown well past its calibration), and
        ``runtimes``: which runtime runs each model and why (``FaceEngine.runtimes``).

        ``catch_up=False`` reads the SQL store only, without bringing the index up to date
        first: it never writes (what the service's ``/health`` answers with).
        """
        self.ctx.check_open()
        if catch_up:
            self.ctx.sync()
        with self.ctx.store.read() as s:
            people = self.ctx.store.count_people(s)
            faces = self.ctx.store.count_faces(s)
        rules = self.threshold_stats(people)  # refreshes the thresholds in force
        return {
            "location": self.ctx.location,
            "people": people,
            "faces": faces,
            "model": self.ctx.facts.model_id,
            "pack": self.ctx.facts.pack,
            "dimension": self.ctx.facts.dimension,
            "generation": self.ctx.store.generation(),
            "index": self.ctx.vectors.kind,
            "index_location": self.ctx.vectors.location,
            "threshold": self.ctx.thresholds.naming,
            "encrypted": self.ctx.store.cipher is not None,
            "runtimes": self.ctx.engine.runtimes,
            **rules,
        }

    def threshold_stats(self, people: int) -> dict[str, Any]:
        """Where the thresholds in force came from, for stats and /health:
        ``threshold_source`` ("explicit", "calibrated" or "prior"), ``threshold_rule`` (in
        words), the estimated FPIR at the gallery's size and the target, the enrollment floor
        and the pairwise threshold (facedb.calibration.in_force), the calibration's target,
        size, source and time (None before one), and ``calibration_warning`` when the
        estimated FPIR exceeds the target (an uncalibrated gallery past the size where the
        prior's rule is capped) or the gallery has outgrown its calibration."""
        self.ctx.refresh_calibration()
        found = self.ctx.calibration
        rules = self.ctx.thresholds
        return {
            "threshold_source": rules.source,
            "threshold_rule": rules.rule,
            "estimated_fpir": round(rules.estimated_fpir, 6),
            "target_fpir": rules.target_fpir,
            "enrollment_floor": round(rules.enrollment, 4),
            "pairwise_threshold": round(rules.pairwise, 4),
            "prior": self.ctx.prior_source,
            "calibration_target": None if found is None else f"{found.target_kind} {found.target:g}",
            "calibrated_people": None if found is None else found.people,
            "calibration_source": None if found is None else found.source,
            "calibrated_at": None if found is None else found.created_at.isoformat(),
            "calibration_warning": rules.warning,
        }
