"""The gallery: people enrolled from photos, and "who is this?" for any new photo.

:class:`FaceDB` is a facade: it opens one gallery (facedb.context: the SQL store, the source of
truth; the vector store derived from it; the engine; the threshold in force) and hands each
call to the service that owns its job (facedb.jobs: people, recognition, enrollment, feedback,
groups, maintenance, events). Every write goes through one path (facedb.writes).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from facedb.calibration import Calibration, Thresholds
from facedb.context import GalleryContext, check_unit
from facedb.engine import Color, FaceEngine, ImageInput
from facedb.enrollment import EnrollmentPolicy
from facedb.errors import ConfigError
from facedb.folders import FolderImport, import_folder
from facedb.jobs.enrollment import Enroller
from facedb.jobs.events import Events
from facedb.jobs.feedback import Feedback
from facedb.jobs.groups import Groups
from facedb.jobs.maintenance import Maintenance
from facedb.jobs.people import People
from facedb.jobs.recognition import Recognition
from facedb.results import Identification, Person, ReembedReport
from facedb.store import GalleryFacts, Store
from facedb.vectors import Consistency, GalleryVectors
from facedb.writes import Writes

__all__ = ["FaceDB"]

P = ParamSpec("P")
R = TypeVar("R")


class _Job(Generic[P, R]):
    """``FaceDB.name`` is the method of the same name of one of its services: the same
    signature, answer and docstring (``help(db.enroll_photos)``), without a copy of either."""

    def __init__(self, job: str, method: Callable[Concatenate[Any, P], R]) -> None:
        self.job, self.method = job, method
        self.__doc__ = method.__doc__

    @overload
    def __get__(self, db: None, owner: type) -> Callable[Concatenate[Any, P], R]: ...

    @overload
    def __get__(self, db: FaceDB, owner: type) -> Callable[P, R]: ...

    def __get__(self, db: FaceDB | None, owner: type) -> Callable[..., R]:
        if db is None:
            return self.method
        bound: Callable[P, R] = getattr(getattr(db, self.job), self.method.__name__)
        return bound


T = TypeVar("T")


class _Part(Generic[T]):
    """``FaceDB.name`` is the open gallery's part of that name (read-only)."""

    def __init__(self, doc: str) -> None:
        self.__doc__ = doc
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, db: None, owner: type) -> _Part[T]: ...

    @overload
    def __get__(self, db: FaceDB, owner: type) -> T: ...

    def __get__(self, db: FaceDB | None, owner: type) -> T | _Part[T]:
        if db is None:
            return self
        part: T = getattr(db._ctx, self.name)
        return part

    def __set__(self, db: FaceDB, value: T) -> None:
        raise AttributeError(f"FaceDB.{self.name} is the open gallery's own: it cannot be replaced")


class FaceDB:
    """A gallery of people: enroll from photos, then identify the faces in any photo.

    Args:
        path: a folder (created if missing) holding gallery.db and the index; or a SQL URL
            (anything containing ``://``), like ``url``.
        url: a SQLAlchemy URL for the metadata (``postgresql://user@host/db``). A
            ``vectors=`` query parameter in it names the vector store (stripped before
            SQLAlchemy sees the URL).
        vectors: the vector store: None for a FAISS index (in the folder, or in ``cache_dir``
            for a SQL URL), or ``milvus://host:port/collection`` for Milvus.
        engine: the face engine; default: :func:`facedb.default_engine`.
        threshold: similarity at which a face is taken to be a person; None (the default):
            the threshold in force, the gallery's newest calibration (:meth:`calibrate`) or,
            before one, the model's prior at the gallery's size (:attr:`thresholds`;
            docs/calibration.md).
        target_fpir: what the prior's threshold aims at before a calibration: the share of
            strangers' searches that may name somebody (default 0.01).
        min_face_size: enrollment refuses faces whose box's short side is smaller (pixels).
        min_det_score: enrollment refuses faces the detector is less sure of.
        ambiguity_margin: a face whose best two people are closer than this is ambiguous.
        index: ``"auto"`` (exact while small, approximate past a size), ``"exact"`` or
            ``"approximate"``.
        cache_dir: where a SQL-URL gallery keeps its vector index.
        read_only: open without writing anything (a replica, a container image, a backup):
            people, identify and search work; every write raises :class:`ReadOnlyGallery`.
            The gallery must exist and be of this facedb's schema; an index that lags is
            caught up in memory only.
        create: make the gallery if there is none (never inside a folder of photos). With
            ``create=False`` a missing gallery is a :class:`GalleryError`: a mistyped path
            must not become an empty gallery that calls everybody unknown.
        thumbnails: keep a 112x112 JPEG of each new face with it (for the web page).
        pack: the model pack (``"buffalo_s"``, ``"sface"``; facedb.engine.packs) when no
            ``engine`` is given; None: the gallery's own (the default pack for a new one).
            A gallery of another pack is a GalleryError naming both (:meth:`reembed` moves it).
        crops: keep each new face's aligned crop losslessly (facedb.crops, about 20 KB a
            face), so that :meth:`reembed` can make its template with another pack.
        key: the gallery key (:func:`facedb.new_key`; its base64 text or its 32 bytes): the
            gallery's templates and thumbnails are kept encrypted with it (AES-256-GCM), in
            SQL and in the index files. None: the key the environment gives
            (``FACEDB_KEY_FILE``, a file holding it, else ``FACEDB_KEY``), if any. A gallery
            is made sealed with the key it is first opened with; opening it without its key
            or with another is an :class:`EncryptionKeyError`; :meth:`rekey` changes it.

    Example:
        >>> with facedb.FaceDB("gallery") as db:
        ...     db.enroll("Tom Hanks", ["tom.png", "hanks.jpg"])
        ...     for r in db.identify("group.jpg"):
        ...         print(r.person.name if r.person else "unknown", r.similarity)
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        url: str | None = None,
        engine: FaceEngine | None = None,
        threshold: float | None = None,
        min_face_size: float = 48.0,
        min_det_score: float = 0.6,
        ambiguity_margin: float = 0.05,
        index: str = "auto",
        cache_dir: str | os.PathLike[str] | None = None,
        vectors: str | None = None,
        read_only: bool = False,
        create: bool = True,
        thumbnails: bool = True,
        key: str | bytes | None = None,
        target_fpir: float = 0.01,
        pack: str | None = None,
        crops: bool = True,
    ) -> None:
        self._args: dict[str, Any] = {
            "url": url,
            "engine": engine,
            "threshold": threshold,
            "min_face_size": min_face_size,
            "min_det_score": min_det_score,
            "ambiguity_margin": ambiguity_margin,
            "index": index,
            "cache_dir": cache_dir,
            "vectors": vectors,
            "read_only": read_only,
            "create": create,
            "thumbnails": thumbnails,
            "key": key,
            "target_fpir": target_fpir,
            "pack": pack,
            "crops": crops,
        }
        self._path = path
        self._open(GalleryContext(path, **self._args))

    def _open(self, ctx: GalleryContext) -> None:
        """Builds the services over an open gallery."""
        self._ctx = ctx
        self._events = Events(ctx)
        self._people = People(ctx)
        self._recognition = Recognition(ctx, announce=self._events.identified)
        self._enroller = Enroller(ctx, self._people, self._recognition)
        self._feedback = Feedback(ctx, self._people, self._recognition, self._enroller)
        self._groups = Groups(ctx, self._people, self._recognition, self._enroller)
        self._maintenance = Maintenance(ctx)

    # -- the open gallery ------------------------------------------------------------------

    location = _Part[str]("The gallery's folder, or its SQL URL without a password.")
    store = _Part[Store]("The SQL store (the source of truth; for tools such as ``facedb copy``).")
    writes = _Part[Writes]("The one write path (facedb.writes), for code that writes through ``store``.")
    vectors = _Part[GalleryVectors]("The vector store (FAISS or Milvus), derived from the SQL store.")
    engine = _Part[FaceEngine](
        "The face engine (the shared engine of the gallery's pack loads at first use: at the first photo)."
    )
    facts = _Part[GalleryFacts]("The gallery's identity, model and template dimension.")
    read_only = _Part[bool]("Whether the gallery was opened read-only.")
    thumbnails = _Part[bool]("Whether a thumbnail of each new face is kept.")
    policy = _Part[EnrollmentPolicy]("The enrollment gate's settings and the naming threshold in force.")
    ambiguity_margin = _Part[float]("A face whose best two people are closer than this is ambiguous.")

    @property
    def threshold(self) -> float:
        """Similarity at which a face is taken to be a person (identify, verify and the gate):
        the explicit one if set, else the calibration in force, else the model's prior."""
        return self._ctx.threshold

    @threshold.setter
    def threshold(self, value: float) -> None:
        self._ctx.set_threshold(value)

    @property
    def thresholds(self) -> Thresholds:
        """Every threshold in force, decided in one place from one score model: naming (the
        :attr:`threshold`), the enrollment gate's likeness floor (never below naming), the
        threshold of grouping and the audit (never below naming, FMR-based), how naming was
        chosen, the estimated FPIR at the gallery's size and a warning when it exceeds the
        target (facedb.calibration.in_force; docs/calibration.md)."""
        self._ctx.check_open()
        self._ctx.refresh_calibration()
        return self._ctx.thresholds

    @property
    def calibration(self) -> Calibration | None:
        """The calibration in force (the gallery's newest for its model), None before one."""
        self._ctx.check_open()
        self._ctx.refresh_calibration()
        return self._ctx.calibration

    @property
    def min_face_size(self) -> float:
        """Enrollment refuses faces whose box's short side is smaller (pixels)."""
        return self._ctx.policy.min_face_size

    @min_face_size.setter
    def min_face_size(self, value: float) -> None:
        if value < 0:
            raise ConfigError(f"min_face_size must be >= 0, got {value}")
        self._ctx.policy = replace(self._ctx.policy, min_face_size=float(value))

    @property
    def min_det_score(self) -> float:
        """Enrollment refuses faces the detector is less sure of."""
        return self._ctx.policy.min_det_score

    @min_det_score.setter
    def min_det_score(self, value: float) -> None:
        self._ctx.policy = replace(self._ctx.policy, min_det_score=check_unit("min_det_score", value))

    @property
    def events(self) -> Events:
        """The gallery's events (facedb.events): subscriptions to webhooks and MQTT brokers,
        what they are owed, and the dispatcher that delivers it.

        Example:
            >>> made = db.events.add_webhook("http://127.0.0.1:9000/hook")
            >>> made.secret  # shown only now
            >>> db.events.dispatcher().start()
        """
        return self._events

    def reembed(
        self,
        pack: str | FaceEngine,
        *,
        batch: int = 256,
        drop_missing: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> ReembedReport:
        """Moves the gallery to another model pack, keeping its people (``facedb reembed``).

        Every face's template is made anew by ``pack``'s recognizer from the aligned crop the
        gallery kept of it, in batches (resumable after a crash), then all are swapped in one
        transaction; the index is rebuilt and the old index files are zeroed, and this object
        goes on with the new pack. What keeps no crop is listed in a GalleryError and nothing
        is swapped, unless ``drop_missing=True`` (see
        :meth:`facedb.jobs.maintenance.Maintenance.reembed` for the details).

        Example:
            >>> report = db.reembed("sface", progress=lambda done, total: print(done, total))
            >>> report.faces, report.dropped
        """
        # Imported here: importing FAISS at `import facedb` would log before `serve` sets logging up.
        from facedb.faiss import wipe_folder

        report = self._maintenance.reembed(pack, batch=batch, drop_missing=drop_missing, progress=progress)
        index_folder = self._ctx.vectors.location
        engine = pack if isinstance(pack, FaceEngine) else None
        self.close()
        wipe_folder(index_folder)
        self._open(GalleryContext(self._path, **{**self._args, "engine": engine, "pack": report.pack}))
        return report

    def close(self) -> None:
        """Saves the index, checkpoints the database and releases files. Idempotent."""
        if not self._ctx.closed:
            self._events.close()  # person.identified events still in memory
        self._ctx.close()

    def __enter__(self) -> FaceDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        ctx = getattr(self, "_ctx", None)
        if ctx is not None and not ctx.closed:
            try:
                ctx.close()
            except Exception:
                pass

    def __len__(self) -> int:
        """How many people the gallery holds."""
        return self._people.count()

    def __repr__(self) -> str:
        return f"FaceDB({self.location!r})"

    # -- people ----------------------------------------------------------------------------

    people = _Job("_people", People.people)
    get = _Job("_people", People.get)
    find = _Job("_people", People.find)
    resolve = _Job("_people", People.resolve)
    rename = _Job("_people", People.rename)
    remove = _Job("_people", People.remove)
    remove_face = _Job("_people", People.remove_face)
    faces = _Job("_people", People.faces)
    thumbnail = _Job("_people", People.thumbnail)
    portraits = _Job("_people", People.portraits)

    # -- enrollment ------------------------------------------------------------------------

    def enroll(
        self,
        name: str,
        photos: Iterable[ImageInput] | ImageInput,
        metadata: Mapping[str, Any] | None = None,
        *,
        force: bool = False,
        largest_face: bool = False,
        color: Color = "bgr",
    ) -> Person:
        """Adds photos to the one person of this name, or creates them: :meth:`enroll_photos`
        (all or nothing, the same gate), answering with the person."""
        return self._enroller.enroll_photos(
            name, photos, metadata, force=force, largest_face=largest_face, color=color
        ).person

    def add_faces(
        self,
        person: Person | int | str,
        photos: Iterable[ImageInput] | ImageInput,
        *,
        force: bool = False,
        largest_face: bool = False,
        color: Color = "bgr",
    ) -> Person:
        """Adds photos of an existing person (same gate and rules as :meth:`enroll`)."""
        return self._enroller.add_photos(
            person, photos, force=force, largest_face=largest_face, color=color
        ).person

    enroll_photos = _Job("_enroller", Enroller.enroll_photos)
    add_photos = _Job("_enroller", Enroller.add_photos)
    create_person = _Job("_enroller", Enroller.create_person)
    import_embeddings = _Job("_enroller", Enroller.import_embeddings)

    def import_folder(
        self,
        folder: str | os.PathLike[str],
        *,
        force: bool = False,
        largest_face: bool = False,
        on_folder: Callable[[str], None] | None = None,
    ) -> FolderImport:
        """Imports a folder of people: each sub-folder's photos are enrolled as the person it
        is named after (as :meth:`enroll_photos`); a person's refused photos are skipped with
        their reasons and the others enrolled. ``on_folder`` is called with each sub-folder's
        name when it is done (a progress bar).

        Example:
            >>> with facedb.FaceDB("gallery") as db:
            ...     result = db.import_folder("photos/")  # photos/Tom Hanks/1.jpg, ...
            ...     print(len(result.added), "faces added;", len(result.skipped), "skipped")

        Raises:
            ConfigError: not a folder, one without sub-folders, or one holding the gallery.
        """
        return import_folder(
            self._enroller, Path(folder), force=force, largest_face=largest_face, on_folder=on_folder
        )

    # -- faces nobody has named yet ------------------------------------------------------

    discover = _Job("_groups", Groups.discover)
    groups = _Job("_groups", Groups.groups)
    group = _Job("_groups", Groups.group)
    group_thumbnail = _Job("_groups", Groups.group_thumbnail)
    name_group = _Job("_groups", Groups.name_group)
    dismiss_group = _Job("_groups", Groups.dismiss_group)

    # -- recognition -----------------------------------------------------------------------

    search = _Job("_recognition", Recognition.search)
    identify_faces = _Job("_recognition", Recognition.identify_faces)
    verify = _Job("_recognition", Recognition.verify)

    @overload
    def identify(
        self,
        photo: ImageInput,
        k: int = 5,
        *,
        threshold: float | None = None,
        color: Color = "bgr",
        consistency: Consistency | None = None,
    ) -> list[Identification]: ...

    @overload
    def identify(
        self,
        photo: list[ImageInput] | tuple[ImageInput, ...],
        k: int = 5,
        *,
        threshold: float | None = None,
        color: Color = "bgr",
        consistency: Consistency | None = None,
    ) -> list[list[Identification]]: ...

    def identify(
        self,
        photo: ImageInput | list[ImageInput] | tuple[ImageInput, ...],
        k: int = 5,
        *,
        threshold: float | None = None,
        color: Color = "bgr",
        consistency: Consistency | None = None,
    ) -> list[Identification] | list[list[Identification]]:
        return self._recognition.identify(photo, k, threshold=threshold, color=color, consistency=consistency)

    identify.__doc__ = Recognition.identify.__doc__

    # -- feedback --------------------------------------------------------------------------

    reject = _Job("_feedback", Feedback.reject)
    reject_face = _Job("_feedback", Feedback.reject_face)
    reject_sighting = _Job("_feedback", Feedback.reject_sighting)
    confirm = _Job("_feedback", Feedback.confirm)
    confirm_sighting = _Job("_feedback", Feedback.confirm_sighting)
    sighting_thumbnail = _Job("_feedback", Feedback.sighting_thumbnail)
    audit = _Job("_feedback", Feedback.audit)

    # -- maintenance -----------------------------------------------------------------------

    calibrate = _Job("_maintenance", Maintenance.calibrate)
    check = _Job("_maintenance", Maintenance.check)
    rebuild_index = _Job("_maintenance", Maintenance.rebuild_index)
    rekey = _Job("_maintenance", Maintenance.rekey)
    stats = _Job("_maintenance", Maintenance.stats)
    sync_vectors = _Job("_maintenance", Maintenance.sync_vectors)
