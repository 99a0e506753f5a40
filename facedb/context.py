"""One open gallery, as every service sees it: its stores, engine, enrollment policy and the
thresholds in force, and whether it is open and writable.

:class:`facedb.FaceDB` builds one :class:`GalleryContext` and hands it to each service
(facedb.services); nothing below the gallery imports ``FaceDB``. The threshold in force is
decided here and nowhere else: an explicit one (a user's), else the gallery's calibration,
else the model's prior at the gallery's size (CONTRACTS: "one place decides the threshold in
force"); the enrollment floor and grouping's and the audit's thresholds follow from it
(facedb.calibration.in_force).
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import replace

from facedb import calibration
from facedb.calibration import Calibration, ScoreModel, Thresholds
from facedb.encryption import cipher_from
from facedb.engine import DEFAULT_PACK, DEFAULT_THRESHOLD, FaceEngine, pack_engine
from facedb.engine.packs import check_pack, installed_identity
from facedb.enrollment import EnrollmentPolicy
from facedb.errors import ConfigError, GalleryError, ReadOnlyGallery
from facedb.extras import require
from facedb.locations import index_folder, parse_location, prepare_folder, sqlite_url
from facedb.store import GalleryFacts, Store
from facedb.vectors import GalleryVectors, open_vectors
from facedb.writes import Writes

__all__ = ["GalleryContext", "check_unit"]

log = logging.getLogger("facedb")


def check_unit(name: str, value: float) -> float:
    """``value`` as a float, if it lies in 0..1."""
    if not 0.0 <= float(value) <= 1.0:
        raise ConfigError(f"{name} must be between 0 and 1, got {value}")
    return float(value)


class GalleryContext:
    """An open gallery's parts and settings (see :class:`facedb.FaceDB` for the arguments).

    Attributes:
        location: the gallery's folder, or its SQL URL without a password.
        store: the SQL store (the source of truth).
        vectors: the vector store (FAISS or Milvus), derived from the SQL store.
        engine: the face engine.
        facts: the gallery's identity, model and template dimension.
        policy: the enrollment gate's settings and the naming threshold in force.
        writes: the one path every write takes (facedb.writes).
        lock: held while the vector store is caught up or changed in this process.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None,
        *,
        url: str | None,
        engine: FaceEngine | None,
        threshold: float | None,
        min_face_size: float,
        min_det_score: float,
        ambiguity_margin: float,
        index: str,
        cache_dir: str | os.PathLike[str] | None,
        vectors: str | None,
        read_only: bool,
        create: bool,
        thumbnails: bool,
        key: str | bytes | None = None,
        target_fpir: float = calibration.DEFAULT_TARGET_FPIR,
        pack: str | None = None,
        crops: bool = True,
    ) -> None:
        where = parse_location(path, url, vectors)
        cipher = cipher_from(key)
        if threshold is not None:
            check_unit("threshold", threshold)
        if isinstance(target_fpir, bool) or not 0.0 < float(target_fpir) < 1.0:
            raise ConfigError(f"target_fpir must be between 0 and 1 (exclusive), got {target_fpir!r}")
        #: The FPIR an uncalibrated gallery's threshold aims at (facedb.calibration.in_force).
        self.target_fpir = float(target_fpir)
        check_unit("ambiguity_margin", ambiguity_margin)
        check_unit("min_det_score", min_det_score)
        if min_face_size < 0:
            raise ConfigError(f"min_face_size must be >= 0, got {min_face_size}")
        self.policy = EnrollmentPolicy(
            float(min_face_size), float(min_det_score), DEFAULT_THRESHOLD if threshold is None else threshold
        )
        #: The enrollment gate's own likeness floor; the one in force is never below naming.
        self.enrollment_floor = self.policy.min_own_similarity
        #: An explicit threshold (argument or setter) overrides the one in force.
        self.explicit_threshold = None if threshold is None else float(threshold)
        self.calibration: Calibration | None = None
        self._calibration_generation = -1
        #: How many people the gallery had when the calibration was last looked at.
        self.people_seen = 0
        self.ambiguity_margin = float(ambiguity_margin)
        #: Whether a 112x112 JPEG of each new face is kept with it (for the web page).
        self.thumbnails = bool(thumbnails)
        #: Whether each new face's aligned crop is kept losslessly (facedb.crops: reembed).
        self.crops = bool(crops)
        if pack is not None:
            check_pack(pack)
            if engine is not None and engine.pack != pack:
                raise ConfigError(f"pack={pack!r} and an engine of the {engine.pack} pack: give one of them")
        self.lock = threading.RLock()
        self.closed = False
        self.read_only = bool(read_only)
        if where.vectors is not None and where.vectors.startswith("milvus://"):
            require("milvus", "a Milvus vector store")  # before a gallery is made for it
        if where.folder is not None:
            prepare_folder(where.folder, read_only=self.read_only, create=create)
            self.location = str(where.folder)
            self.store = Store(sqlite_url(where.folder), read_only=self.read_only, cipher=cipher)
        else:
            assert where.url is not None
            self.store = Store(where.url, read_only=self.read_only, create=create, cipher=cipher)
            self.location = self.store.safe_url
        self._engine = engine
        self._engine_lock = threading.Lock()
        try:
            # Without an engine or a pack, the gallery's own pack (the default for a new one).
            recorded = self.store.recorded_pack()
            self._engine_pack = engine.pack if engine is not None else pack or recorded or DEFAULT_PACK
            # An existing gallery of the shared engine's pack is checked against the installed
            # recognizer's identity, and the models load at the first photo (a search by
            # template never needs them); a new gallery loads them now.
            identity = installed_identity(self._engine_pack) if engine is None and recorded else None
            if identity is None:
                self._engine = engine or pack_engine(self._engine_pack)
                identity = (self._engine.model_id, self._engine.embedding_size)
            self.facts: GalleryFacts = self.store.claim(*identity, pack=self._engine_pack)
            self.vectors: GalleryVectors = open_vectors(
                where.vectors,
                folder=index_folder(where, self.store.safe_url, self.facts.uid, cache_dir),
                dimension=self.facts.dimension,
                model_id=self.facts.model_id,
                gallery_uid=self.facts.uid,
                kind=index,
                store=self.store,
            )
        except BaseException:
            self.store.close()
            raise
        #: The model's prior: the score model and threshold in force before a calibration.
        self.prior, self.prior_threshold, self.prior_source = calibration.model_prior(self.facts.model_id)
        # A recognizer whose impostors reach higher than the gate's own floor has its own.
        own_floor = calibration.model_enrollment_floor(self.facts.model_id)
        self.enrollment_floor = self.enrollment_floor if own_floor is None else own_floor
        if self.prior_source.startswith("no prior for"):
            log.warning("%s: %s", self.location, self.prior_source)
        self.writes = Writes(self.store, self.vectors, self.lock, gallery=self.facts.uid)
        self.thresholds: Thresholds
        try:
            self.refresh_calibration()  # the thresholds for the gallery as it is now
        except BaseException:
            self.vectors.close()
            self.store.close()
            raise

    @property
    def engine(self) -> FaceEngine:
        """The face engine: the one given, else the shared engine of the gallery's pack, loaded
        at first use and checked then against the recognizer the gallery was opened for.

        Raises:
            GalleryError: the loaded recognizer is not the one identified at open (its file
                was replaced meanwhile, or found elsewhere than the wheel).
        """
        found = self._engine
        if found is not None:
            return found
        with self._engine_lock:
            if self._engine is None:
                loaded = pack_engine(self._engine_pack)
                if loaded.model_id != self.facts.model_id or loaded.embedding_size != self.facts.dimension:
                    raise GalleryError(
                        f"the gallery at {self.location} holds templates of model "
                        f"{self.facts.model_id} ({self.facts.dimension}-d); the {self._engine_pack} "
                        f"engine loaded makes {loaded.model_id} ({loaded.embedding_size}-d): templates "
                        "of different models cannot be compared"
                    )
                self._engine = loaded
            return self._engine

    # -- open, writable ----------------------------------------------------------------------

    def check_open(self) -> None:
        """Raises GalleryError once the gallery is closed."""
        if self.closed:
            raise GalleryError(f"the gallery {self.location} is closed")

    def check_writable(self) -> None:
        """Raises GalleryError once closed, ReadOnlyGallery when opened read-only."""
        self.check_open()
        if self.read_only:
            raise ReadOnlyGallery(f"the gallery {self.location} is open read-only: nothing can be changed")

    def sync(self) -> None:
        """Catches the vector store up with SQL (another process may have written)."""
        self.check_open()
        self.vectors.sync(self.store)

    def close(self) -> None:
        """Saves the index, checkpoints the database and releases files. Idempotent."""
        with self.lock:
            if self.closed:
                return
            self.closed = True
            self.vectors.close()
            self.store.close()

    # -- the threshold in force --------------------------------------------------------------

    @property
    def threshold(self) -> float:
        """The naming threshold in force (see :attr:`thresholds`)."""
        if not self.closed:
            self.refresh_calibration()
        return self.thresholds.naming

    def set_threshold(self, value: float) -> None:
        """Makes ``value`` the explicit threshold of this process."""
        self.explicit_threshold = check_unit("threshold", value)
        with self.lock:
            self._decide()

    def limit(self, threshold: float | None) -> float:
        """The threshold to name people at: the one a call gives, or the one in force (the
        calibration reloaded when another process changed it)."""
        if threshold is None:
            return self.threshold
        value = check_unit("threshold", threshold)
        self.refresh_calibration()  # the confidence's score model and gallery size
        return value

    def score_model(self) -> ScoreModel:
        """The score model of the confidences: the calibration's, else the prior's."""
        return self.prior if self.calibration is None else self.calibration.model

    def refresh_calibration(self) -> None:
        """Reloads the calibration in force and the gallery's size when the generation moved
        (every change of faces or people, and a calibration, bumps it), and decides the
        thresholds again: one cheap query while nothing changed."""
        generation = self.store.generation()
        if generation == self._calibration_generation:
            return
        with self.store.read() as s:
            row = self.store.calibration_in_force(s, self.facts.model_id)
            found = None if row is None else calibration.calibration_from_row(row)
            people = self.store.count_people(s)
        with self.lock:
            self.calibration = found
            self.people_seen = people
            self._calibration_generation = generation
            self._decide()

    def _decide(self) -> None:
        """Every threshold from one score model (facedb.calibration.in_force), and the
        enrollment policy held to them."""
        self.thresholds = calibration.thresholds_in_force(
            model=self.score_model(),
            fmr_threshold=self.prior_threshold,
            people=self.people_seen,
            explicit=self.explicit_threshold,
            calibration=self.calibration,
            target_fpir=self.target_fpir,
            enrollment_floor=self.enrollment_floor,
        )
        self.policy = replace(
            self.policy, threshold=self.thresholds.naming, min_own_similarity=self.thresholds.enrollment
        )
