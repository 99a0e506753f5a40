"""What several test modules share, written once: the repository's paths, the `facedb` command
and other child processes, a live `facedb serve`, random unit templates, scans of files for
bytes, the test servers (a fresh PostgreSQL database, the Milvus address) and the SIGKILL
crash check.

Plain functions and constants; the fixtures built on them (`pg_url`, `milvus_url`, ...) are in
conftest.py. crash_writer.py and concurrent_writer.py, run as scripts, import this module as
`helpers` (their folder is first on sys.path).
"""

from __future__ import annotations

import os
import random
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

import facedb

ROOT = Path(__file__).resolve().parent.parent
"""The repository (the checkout under test)."""

FACEDB = Path(sys.executable).with_name("facedb")
"""The `facedb` command installed beside this interpreter (the real entry point)."""

CHILD_ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
}
"""The environment of child processes that must import this checkout's facedb (a venv may
have another one installed)."""

#: The fields of one face's identify answer, the same in the CLI's --json and over HTTP.
IDENTIFICATION_FIELDS = {
    "bbox",
    "score",
    "quality",
    "quality_reasons",
    "person",
    "similarity",
    "ambiguous",
    "status",
    "confidence",
    "threshold",
    "candidates",
}


# -- resources a test needs ----------------------------------------------------------------------


def missing(reason: str) -> None:
    """Skip outside CI; fail in CI, where every resource must be there."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"required test resource missing in CI: {reason}")
    pytest.skip(reason)


def join_all(threads: list[threading.Thread], timeout: float = 60.0) -> None:
    """Joins every thread a test started, within `timeout` seconds in all, and fails the test
    if one is still running (a hung thread must not outlive its test unnoticed)."""
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    alive = [t.name for t in threads if t.is_alive()]
    assert not alive, f"threads still running after {timeout:.0f} s: {alive}"


# -- child processes -----------------------------------------------------------------------------


def run_command(
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """Runs `command` to its end with stdin closed and its output captured as text. `env` is
    the child's whole environment when given (else this process's)."""
    return subprocess.run(
        list(command),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=None if env is None else dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )


def run_cli(
    *args: str, db: Path | str | None = None, env: Mapping[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """`facedb [--db DB] ARGS...` through its real entry point, importing this checkout's
    facedb (CHILD_ENV); `env` adds to (or overrides) that environment.

        run_cli("people", db=tmp_path / "g").stdout
    """
    command = [str(FACEDB)] + (["--db", str(db)] if db is not None else []) + list(args)
    return run_command(command, env={**CHILD_ENV, **(env or {})}, timeout=timeout)


def run_python(code: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Runs code in a new interpreter (ONNX Runtime loads once per process) that imports this
    checkout's facedb (CHILD_ENV); `env` adds to that environment."""
    return run_command([sys.executable, "-c", code], env={**CHILD_ENV, **(env or {})}, timeout=120)


def cli(db: Path | str, *args: str) -> str:
    """`facedb --db DB ARGS...` with this checkout's facedb, which must succeed: its stdout,
    stripped."""
    result = run_cli(*args, db=db, env=CHILD_ENV, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (just now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`facedb serve` in a child process; its stderr goes to a file (a pipe nobody reads
    would fill up and stop the server)."""

    def __init__(
        self, db: Path | str, *extra: str, port: int | None = None, log_dir: Path | None = None
    ) -> None:
        self.db, self.extra = db, extra
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Beside a folder gallery unless told (a SQL-URL gallery has no folder).
        logs = log_dir or (db.parent if isinstance(db, Path) else None)
        if logs is None:
            raise ValueError("a Server on a SQL URL needs log_dir")
        self.log_path = logs / f"serve-{self.port}.log"
        self.start()

    def start(self) -> None:
        """Starts the server and waits (60 s at most) until /health answers."""
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen(
                [str(FACEDB), "--db", str(self.db), "serve", "--port", str(self.port), *self.extra],
                stdout=subprocess.DEVNULL,
                stderr=log,
                env=CHILD_ENV,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server died: {self.log()}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError("server did not start in 60 s")

    def log(self) -> str:
        """Everything the server wrote to stderr so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """Terminates the server (kills it if it does not stop within 30 s)."""
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(30)


# -- test data: templates, galleries, photos -----------------------------------------------------


def unit_rows(rng: np.random.Generator | int, n: int, d: int = 512) -> np.ndarray:
    """`n` random float32 rows of length 1 in `d` dimensions (templates that need no photo).
    `rng` is a generator, whose draws this uses up, or a seed."""
    x = np.random.default_rng(rng).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def unit_vector(rng: np.random.Generator | int, d: int = 512) -> np.ndarray:
    """One random float32 vector of length 1 in `d` dimensions; the same seed gives the same
    vector in every process."""
    v = np.random.default_rng(rng).normal(size=d).astype(np.float32)
    return v / np.linalg.norm(v)


def enroll_gallery(db: facedb.FaceDB, faces_dir: Path) -> None:
    """Enrolls everybody of ../shared/faces/gallery, a person a folder, in name order."""
    for person in sorted((faces_dir / "gallery").iterdir()):
        db.enroll(person.name, sorted(person.iterdir()))


def png_header_claiming(width: int, height: int) -> bytes:
    """A valid PNG header and a tiny IDAT claiming huge dimensions: a decompression bomb."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1000)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


# -- bytes left in files -------------------------------------------------------------------------


def _readable_files(folder: Path) -> Iterator[tuple[Path, bytes]]:
    """Every file below `folder` with its bytes; one that cannot be read (gone meanwhile, a
    socket) is passed over."""
    for root, _, names in os.walk(folder):
        for name in names:
            path = Path(root) / name
            try:
                yield path, path.read_bytes()
            except OSError:
                continue


def files_containing(folder: Path, needle: bytes) -> list[str]:
    """The files below `folder` (relative paths) whose bytes contain `needle` anywhere."""
    return [str(path.relative_to(folder)) for path, data in _readable_files(folder) if needle in data]


def files_bytes(folder: Path) -> list[bytes]:
    """The bytes of every file below `folder` (to scan for several needles at one moment)."""
    return [data for _, data in _readable_files(folder)]


# -- the test servers ----------------------------------------------------------------------------


def server_url_or_skip() -> str:
    """The test PostgreSQL server's URL; skips (fails in CI) without one."""
    url = os.environ.get("FACEDB_TEST_POSTGRES_URL")
    if not url:
        missing("no PostgreSQL server: FACEDB_TEST_POSTGRES_URL is not set (make test starts one)")
    assert url is not None
    return url


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new database on the test server, dropped afterwards."""
    name = f"facedb_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)  # outlives restarts
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def postgres_data_or_skip() -> Path:
    """The test PostgreSQL server's folder; skips (fails in CI) when it is not named."""
    data = os.environ.get("FACEDB_TEST_POSTGRES_DATA")
    if not data:
        missing("FACEDB_TEST_POSTGRES_DATA (the server's folder) is not set")
    return Path(str(data))


def milvus_address() -> str:
    """host:port of the test Milvus server; skips (fails in CI) without one."""
    uri = os.environ.get("FACEDB_TEST_MILVUS_URI")
    if not uri:
        missing("no Milvus server: FACEDB_TEST_MILVUS_URI is not set (make test starts one)")
    assert uri is not None
    parts = urlsplit(uri if "://" in uri else f"http://{uri}")
    return f"{parts.hostname}:{parts.port}"


def milvus_data_or_skip() -> Path:
    """The test Milvus server's data folder; skips (fails in CI) when it is not named."""
    data = os.environ.get("FACEDB_TEST_MILVUS_DATA")
    if not data:
        missing("FACEDB_TEST_MILVUS_DATA (the server's data folder) is not set")
    return Path(str(data))


def mqtt_broker() -> tuple[str, int]:
    """(host, port) of the test MQTT broker (Mosquitto, started by `make test`); skips (fails
    in CI) without one."""
    url = os.environ.get("FACEDB_TEST_MQTT_URL")
    if not url:
        missing("no MQTT broker: FACEDB_TEST_MQTT_URL is not set (make test starts Mosquitto)")
    assert url is not None
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 1883
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as e:
        missing(f"the MQTT broker at {url} does not answer: {e}")
    return host, port


# -- SIGKILL of a writer -------------------------------------------------------------------------

CRASH_WRITER = Path(__file__).with_name("crash_writer.py")


def run_and_kill(folder: Path | str, seed: int, photos: list[Path], delay: float) -> list[str]:
    """Starts crash_writer.py on `folder`, kills it with SIGKILL `delay` seconds after it is
    ready, and returns the writes it acknowledged (its ADD, DEL and REMOVING lines)."""
    child = subprocess.Popen(
        [sys.executable, str(CRASH_WRITER), str(folder), str(seed), *map(str, photos)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=CHILD_ENV,
    )
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            if line.strip() == "READY":
                ready.set()
            else:
                lines.append(line.strip())

    reader = threading.Thread(target=read)
    reader.start()
    if not ready.wait(120):
        child.kill()
        raise AssertionError(f"the writer did not start: {child.stderr.read() if child.stderr else ''}")
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    child.wait(60)
    join_all([reader], 60)
    assert child.returncode == -signal.SIGKILL, child.stderr.read() if child.stderr else ""
    return [line for line in lines if line.startswith(("ADD ", "DEL ", "REMOVING "))]


def kill_and_check(folder: Path | str, photos: list[Path], kills: int) -> None:
    """Kills a writer `kills` times and checks the reopened gallery after each kill."""
    rnd = random.Random(20261125)
    added: dict[int, int] = {}
    removed: set[int] = set()
    in_doubt: set[int] = set()  # removals under way at the kill: either outcome is right
    for round_ in range(kills):
        announced: set[int] = set()
        for line in run_and_kill(folder, round_ + 1, photos, rnd.uniform(0.3, 2.5)):
            op, pid, *rest = line.split()
            if op == "ADD":
                added[int(pid)] = int(rest[0])
            elif op == "REMOVING":
                announced.add(int(pid))
            else:
                removed.add(int(pid))
        in_doubt |= announced - removed
        with facedb.FaceDB(folder) as db:
            report = db.check(repair=False)
            assert report.ok, report.problems
            for pid in removed:
                with pytest.raises(facedb.PersonNotFound):
                    db.get(pid)
            survivors = {pid: s for pid, s in added.items() if pid not in removed | in_doubt}
            for pid in survivors:
                db.get(pid)
            imported = {pid: s for pid, s in survivors.items() if s >= 0}
            if imported:
                ids = sorted(imported)
                answers = db.search(np.vstack([unit_vector(imported[i]) for i in ids]), k=3)
                for pid, cands in zip(ids, answers, strict=True):
                    assert cands[0].person.id == pid and cands[0].similarity > 0.999
                    assert not {c.person.id for c in cands} & removed
    assert added and removed, "the writer should have both added and removed"


def lookalike_world(seed: int, people: int, d: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Clusters of look-alikes for synthetic galleries whose impostor scores are not normal:
    one cluster per 25 people, unit centres, each pulling its members to a cosine between
    0.15 and 0.5 of it (benchmarks/calibration.py draws the same world)."""
    rng = np.random.default_rng(seed)
    count = max(people // 25, 4)
    centres = rng.standard_normal((count, d))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    return centres.astype(np.float32), rng.uniform(0.15, 0.5, count)


def lookalikes(rng: np.random.Generator, people: int, centres: np.ndarray, pull: np.ndarray) -> np.ndarray:
    """`people` unit templates drawn in the clusters of :func:`lookalike_world` (cluster sizes
    from a Zipf law, a tenth of the people in none)."""
    sizes = 1.0 / np.arange(1, len(centres) + 1) ** 1.1
    cluster = rng.choice(len(centres), size=people, p=sizes / sizes.sum())
    cluster[rng.random(people) < 0.1] = -1
    noise = rng.standard_normal((people, centres.shape[1])) / np.sqrt(centres.shape[1])
    r = np.where(cluster >= 0, pull[cluster], 0.0)[:, None]
    rows = np.sqrt(r) * np.where(cluster[:, None] >= 0, centres[cluster], 0.0) + np.sqrt(1 - r) * noise
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def noisy_identities(seed: int, people: int, most: int = 8, d: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Templates of `people` synthetic identities drawn in :func:`lookalike_world` (so some
    look alike), 1 to `most` each, every template its identity's direction plus noise of
    norm 0.6 to 1.1 (two templates of one identity score about 0.45 to 0.75), shuffled:
    (templates, labels). benchmarks/discover.py draws the same."""
    rng = np.random.default_rng(seed)
    centres = lookalikes(rng, people, *lookalike_world(seed, people, d))
    counts = rng.integers(1, most + 1, size=people)
    labels = np.repeat(np.arange(people), counts)
    noise = rng.standard_normal((len(labels), d))
    noise *= (rng.uniform(0.6, 1.1, len(labels)) / np.linalg.norm(noise, axis=1))[:, None]
    rows = centres[labels] + noise
    order = rng.permutation(len(labels))
    rows = (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)
    return rows[order], labels[order]
