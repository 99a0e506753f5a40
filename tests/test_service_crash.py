"""`facedb serve` killed with SIGKILL in the middle of enrollments: a client that retries each
unacknowledged request with its Idempotency-Key ends with every person enrolled once."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import Server, cli

REQUESTS = 24
KILLS = 4


def wal_state(db: Path) -> tuple[int, int]:
    wal = db / "gallery.db-wal"
    try:
        st = wal.stat()
    except FileNotFoundError:
        return (0, 0)
    return (st.st_mtime_ns, st.st_size)


def wait_for_commit(db: Path, timeout: float = 20.0) -> None:
    """Returns as soon as the gallery's WAL changes: a transaction has just committed, and the
    server is now saving the index before it answers."""
    before = wal_state(db)
    deadline = time.monotonic() + timeout
    while wal_state(db) == before and time.monotonic() < deadline:
        time.sleep(0.0005)


def test_sigkill_during_enrollments_loses_nothing_and_duplicates_nobody(
    tmp_path: Path, faces_dir: Path
) -> None:
    db = tmp_path / "gallery"
    admin = cli(db, "keys", "create", "--scope", "admin")
    photos = sorted((faces_dir / "gallery").glob("*/*.jp*g"))[:6]
    server = Server(db)
    pending = list(range(REQUESTS))
    acknowledged: dict[int, httpx.Response] = {}
    attempts = Counter[str]()
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(timeout=30) as http:
            while True:
                with lock:
                    if not pending:
                        return
                    i = pending.pop(0)
                photo = photos[i % len(photos)]
                try:
                    answer = http.post(
                        server.url + "/people",
                        headers={"X-API-Key": admin, "Idempotency-Key": f"enroll-{i}"},
                        data={"name": f"person {i}", "force": "true"},
                        files={"photos": (photo.name, photo.read_bytes(), "image/jpeg")},
                    )
                except httpx.ConnectError:
                    answer = None  # the server is down: nothing was sent
                    with lock:
                        attempts["refused while down"] += 1
                except httpx.HTTPError:
                    answer = None
                    with lock:
                        attempts["cut off in flight"] += 1
                with lock:
                    attempts["sent"] += 1
                    if answer is not None and answer.status_code == 201:
                        acknowledged[i] = answer
                        attempts["replayed"] += answer.headers.get("idempotent-replayed") == "true"
                    else:
                        # No answer (the server died) or a 5xx: retry with the same key.
                        assert answer is None or answer.status_code >= 500, answer.text
                        attempts["unacknowledged"] += 1
                        pending.append(i)
                if answer is None:
                    time.sleep(0.2)

    clients = [threading.Thread(target=client) for _ in range(2)]
    chance = random.Random(10)
    try:
        for t in clients:
            t.start()
        for kill in range(KILLS):
            # Every other kill lands right after a commit, before the answer is sent (the
            # case that only an idempotency record written in the same transaction survives);
            # the others at a random moment.
            if kill % 2:
                wait_for_commit(db)
            else:
                time.sleep(chance.uniform(0.4, 1.5))
            server.process.kill()  # SIGKILL: no shutdown, no flush, mid-request
            server.process.wait(30)
            server.start()
        for t in clients:
            t.join(240)
        assert not any(t.is_alive() for t in clients)
        people = httpx.get(server.url + "/people", headers={"X-API-Key": admin}, timeout=30).json()
    finally:
        server.stop()
    names = Counter(p["name"] for p in people)
    duplicates = sum(n - 1 for n in names.values() if n > 1)
    by_id = {p["id"]: p for p in people}
    print(
        f"SIGKILL test: {KILLS} kills, {REQUESTS} enrollments, {attempts['sent']} requests "
        f"({attempts['cut off in flight']} cut off in flight, {attempts['refused while down']} refused "
        f"while down; all retried with their key), {len(acknowledged)} acknowledged, "
        f"{attempts['replayed']} answered by replay, {duplicates} duplicates"
    )
    assert len(acknowledged) == REQUESTS and duplicates == 0 and len(people) == REQUESTS
    for i, answer in acknowledged.items():
        body: dict[str, Any] = answer.json()
        assert by_id[body["id"]]["name"] == f"person {i}" and by_id[body["id"]]["face_count"] == 1
    assert attempts["cut off in flight"] > 0, "no kill interrupted a request: the test proved nothing"
    assert '"ok": true' in cli(db, "check", "--json", "--no-repair")
