"""Events (facedb/events, facedb/jobs/events.py): subscriptions, the outbox written with the
change, and delivery for real: a webhook receiver on 127.0.0.1 (http.server in a thread) that
verifies every request with the `standardwebhooks` library as a receiver would, and the
Mosquitto broker `make test` starts. Outages, 500s, a slow receiver and a SIGKILL of the
delivering process: every event delivered at least once, repeats recognisable by id, order kept
per subscription, nothing from a rolled-back write."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from standardwebhooks import Webhook

import facedb
from facedb.attendance import Watcher, WatchSettings
from facedb.events import DEFAULT_TYPES, EVENT_TYPES, DeliverySettings, public_source
from facedb.keys import KeyStore

from .helpers import CHILD_ENV, FACEDB, Server, free_port, join_all, mqtt_broker, run_cli, unit_rows

#: Quick retries for the tests (the defaults wait seconds to minutes).
FAST = DeliverySettings(first_retry=0.1, max_retry=1.0, poll=0.2, lease=5.0, timeout=5.0)


class _ReusingServer(ThreadingHTTPServer):
    """An HTTP server on a port that may be opened again at once (an outage ends)."""

    allow_reuse_address = True
    daemon_threads = True


class Receiver:
    """A webhook receiver on 127.0.0.1 that records every request it verifies with the
    `standardwebhooks` library (an unverifiable one fails the test). ``answer(n)`` gives the
    HTTP status of the n-th request (from 0); ``delay`` seconds pass before each answer.
    ``stop()`` closes its port (an outage); ``start()`` opens the same port again."""

    def __init__(self, secret: str | None = None, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.secret = secret
        self.got: list[dict[str, Any]] = []
        self.paths: list[str] = []  # the path each of `got` was POSTed to
        self.bad: list[str] = []
        self.answer: Callable[[int], int] = lambda n: 204
        self.delay = 0.0
        self.requests = 0
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None
        self.start()

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver.lock:
                    n = receiver.requests
                    receiver.requests += 1
                time.sleep(receiver.delay)
                status = receiver.answer(n)
                if 200 <= status < 300:
                    try:
                        assert receiver.secret is not None, "no secret to verify with"
                        event = Webhook(receiver.secret).verify(body, dict(self.headers))
                        assert event["id"] == self.headers["webhook-id"]
                        with receiver.lock:
                            receiver.got.append(event)
                            receiver.paths.append(self.path)
                    except Exception as e:
                        receiver.bad.append(f"{type(e).__name__}: {e}")
                        status = 400
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = _ReusingServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="receiver", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            assert self.thread is not None
            join_all([self.thread], 10)
            self.server = None

    def ids(self) -> list[str]:
        with self.lock:
            return [e["id"] for e in self.got]

    def wait_for(self, count: int, timeout: float) -> None:
        """Waits until `count` distinct events arrived."""
        deadline = time.monotonic() + timeout
        while len(set(self.ids())) < count:
            assert time.monotonic() < deadline, f"{len(set(self.ids()))} of {count} events after {timeout} s"
            time.sleep(0.05)
        assert not self.bad, self.bad


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture
def gallery(tmp_path: Path) -> Iterator[facedb.FaceDB]:
    with facedb.FaceDB(tmp_path / "g") as db:
        yield db


def people(db: facedb.FaceDB, n: int, seed: int = 0) -> list[facedb.Person]:
    """`n` people with one random template each (import_embeddings queues no events)."""
    return db.import_embeddings([f"p{i}" for i in range(n)], unit_rows(seed, n))


def in_order(received: list[str], queued: list[str]) -> None:
    """Every queued event arrived, and the first arrival of each is in the queue's order
    (repeats, recognisable by id, may come later)."""
    first = list(dict.fromkeys(received))
    assert set(first) == set(queued), (len(first), len(queued))
    assert first == queued


def queued_ids(db: facedb.FaceDB) -> list[str]:
    return [e.id for e in db.events.pending()]


# -- subscriptions -----------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_types_are_checked_and_person_identified_is_opt_in(gallery: facedb.FaceDB) -> None:
    made = gallery.events.add_webhook("http://127.0.0.1:9/hook")
    assert made.subscription.types == DEFAULT_TYPES and "person.identified" not in DEFAULT_TYPES
    assert gallery.events.add_webhook("http://10.0.0.5/h", types="all").subscription.types == tuple(
        EVENT_TYPES
    )
    chosen = gallery.events.add_webhook("http://h/x", types=["person.removed", "visit.started"])
    assert chosen.subscription.types == ("visit.started", "person.removed")
    with pytest.raises(facedb.ConfigError, match="unknown event type"):
        gallery.events.add_webhook("http://h/x", types="person.arrived")
    for bad in ("ftp://h/x", "http://user:pw@h/x", "http:///x", "http://h/x y"):
        with pytest.raises(facedb.ConfigError):
            gallery.events.add_webhook(bad)
    with pytest.raises(facedb.ConfigError, match="whsec_"):
        gallery.events.add_webhook("http://h/x", secret="not base64!")
    with pytest.raises(facedb.SubscriptionNotFound):
        gallery.events.remove(999)
    assert [s.id for s in gallery.events.subscriptions()] == [1, 2, 3]


@pytest.mark.timeout(60)
def test_a_secret_is_shown_once_sealed_with_the_key_and_erased_with_its_subscription(tmp_path: Path) -> None:
    folder = tmp_path / "sealed"
    with facedb.FaceDB(folder, key=facedb.new_key()) as db:
        made = db.events.add_webhook("http://127.0.0.1:9/hook")
        mqtt = db.events.add_mqtt("mqtt://door:hunter2-password@127.0.0.1:1883/site")
        assert made.secret is not None and made.secret.startswith("whsec_")
        assert mqtt.secret is None and mqtt.subscription.target == "mqtt://door@127.0.0.1:1883/site"
        listed = db.events.subscriptions()
        assert all(s.has_secret for s in listed)
        assert made.secret not in repr(listed)
        raw = b"".join(p.read_bytes() for p in folder.glob("gallery.db*"))
        key = made.secret.removeprefix("whsec_").encode()
        assert key not in raw and b"hunter2-password" not in raw  # sealed with the gallery's key
    with facedb.FaceDB(tmp_path / "plain") as db:
        made = db.events.add_webhook("http://127.0.0.1:9/hook")
        assert made.secret is not None
        key = made.secret.removeprefix("whsec_").encode()
        raw = b"".join(p.read_bytes() for p in (tmp_path / "plain").glob("gallery.db*"))
        assert key in raw  # the scan finds a secret that is there
        db.events.remove(made.subscription.id)
        raw = b"".join(p.read_bytes() for p in (tmp_path / "plain").glob("gallery.db*"))
        assert key not in raw  # erased from the database and its WAL


@pytest.mark.timeout(10)
def test_public_source_never_tells_a_path_or_a_password() -> None:
    assert public_source("/srv/cams/door 1.mp4") == "door 1.mp4"
    assert public_source("0") == "0"
    assert public_source("rtsp://admin:pw@10.0.0.7:554/stream1?token=abc") == "rtsp://10.0.0.7:554/stream1"


# -- the outbox --------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_an_event_is_queued_with_its_write_and_never_for_a_rolled_back_one(gallery: facedb.FaceDB) -> None:
    (person,) = people(gallery, 1)
    assert gallery.events.pending() == []  # no subscription: nothing is written
    gallery.rename(person.id, "nobody listens")
    assert gallery.events.pending() == []
    gallery.events.add_webhook("http://127.0.0.1:9/hook")
    with pytest.raises(RuntimeError, match="boom"):
        with gallery.writes.change() as change:
            gallery.store.rename_person(change.session, person.id, "rolled back")
            assert change.event("person.renamed", {"person": {"id": person.id, "name": "rolled back"}})
            raise RuntimeError("boom")
    assert gallery.events.pending() == [] and gallery.get(person.id).name == "nobody listens"
    with pytest.raises(facedb.ConfigError):
        gallery.rename(person.id, "\x00")  # refused before the write
    gallery.rename(person.id, "Ada")
    (queued,) = gallery.events.pending()
    assert queued.type == "person.renamed" and queued.data["person"] == {"id": person.id, "name": "Ada"}
    assert queued.data["previous_name"] == "nobody listens"
    assert queued.data["gallery"] == gallery.facts.uid


@pytest.mark.timeout(180)
def test_every_door_of_the_library_queues_its_events_signed_and_in_order(
    gallery: facedb.FaceDB, receiver: Receiver, faces_dir: Path, wheel_photos: Path
) -> None:
    made = gallery.events.add_webhook(receiver.url, types="all")
    receiver.secret = made.secret
    # another lane, to the same receiver (and secret)
    plain = gallery.events.add_webhook(receiver.url + "/plain", secret=made.secret, types=["person.removed"])
    alex = gallery.enroll("Alex", sorted((faces_dir / "gallery" / "alex_lacamoire").glob("*.jp*g")))
    gallery.rename(alex.id, "Alex Lacamoire")
    seen = gallery.identify(faces_dir / "probes" / "alex_lacamoire1.jpg")
    assert seen and seen[0].person is not None
    gallery.events.close()  # identify's events are written off its path: flush them now
    watcher = Watcher(gallery, "/srv/cams/door.mp4", WatchSettings(rate=1, votes=1, window=1, cooldown=1))
    watcher.observe(datetime.now(UTC), seen)
    watcher.close()
    gallery.discover([*sorted((faces_dir / "closeups").glob("*.jpg")), wheel_photos / "yaoming.jpg"])
    groups = gallery.groups()
    assert len(groups) >= 2
    gallery.name_group(groups[0].id, "Somebody New")
    gallery.dismiss_group(groups[1].id)
    gallery.remove(alex.id)
    queued = [e for e in gallery.events.pending() if e.subscription_id == made.subscription.id]
    expected = [
        "person.enrolled",
        "person.renamed",
        "person.identified",
        "visit.started",
        "person.enrolled",
        "group.named",
        "group.dismissed",
        "person.removed",
    ]
    assert [e.type for e in queued] == expected
    dispatcher = gallery.events.dispatcher(FAST).start()
    try:
        receiver.wait_for(len(queued), 30)
        assert dispatcher.drain(10)
    finally:
        dispatcher.stop()
    got = list(receiver.got)
    mine = [e["id"] for e, path in zip(got, receiver.paths, strict=True) if path == "/hook"]
    in_order(mine, [q.id for q in queued])
    by_type = {e["type"]: e for e in got}
    visit = by_type["visit.started"]["data"]
    assert visit["person"] == {"id": alex.id, "name": "Alex Lacamoire"} and visit["stranger"] is None
    assert visit["source"] == "door.mp4" and visit["sighting"]["id"] == watcher.logged[0].id
    assert by_type["person.identified"]["data"]["similarity"] > 0.5
    assert by_type["group.named"]["data"]["group"] == {"id": groups[0].id}
    for event in got:
        text = json.dumps(event)
        assert "/srv" not in text and str(faces_dir) not in text and "template" not in text
        assert event["data"]["gallery"] == gallery.facts.uid
        assert event["timestamp"].endswith("Z")
        datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))
    assert gallery.events.pending() == [] and gallery.events.failed() == []
    assert gallery.events.subscription(plain.subscription.id).pending == 0
    # The same event, with the same id, to both subscriptions.
    removed = [e["id"] for e in got if e["type"] == "person.removed"]
    assert len(removed) == 2 and removed[0] == removed[1]


@pytest.mark.timeout(60)
def test_person_identified_is_queued_only_for_a_subscription_that_wants_it(
    gallery: facedb.FaceDB, faces_dir: Path
) -> None:
    gallery.enroll("Alex", sorted((faces_dir / "gallery" / "alex_lacamoire").glob("*.jp*g")))
    probe = faces_dir / "probes" / "alex_lacamoire1.jpg"
    default = gallery.events.add_webhook("http://127.0.0.1:9/a").subscription
    gallery.identify(probe)
    gallery.events.close()
    assert gallery.events.pending() == []
    wants = gallery.events.add_webhook("http://127.0.0.1:9/b", types="person.identified").subscription
    gallery.identify([probe, probe])
    gallery.events.close()
    queued = gallery.events.pending()
    assert [e.subscription_id for e in queued] == [wants.id, wants.id]
    assert all(e.type == "person.identified" for e in queued) and default.id not in {
        e.subscription_id for e in queued
    }


# -- delivery ----------------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_a_receiver_answering_500_gets_every_event_again_in_order(
    gallery: facedb.FaceDB, receiver: Receiver
) -> None:
    made = gallery.events.add_webhook(receiver.url, types="person.renamed")
    receiver.secret = made.secret
    receiver.answer = lambda n: 500 if n in (0, 1, 2, 5) else 204
    (person,) = people(gallery, 1)
    for i in range(6):
        gallery.rename(person.id, f"name {i}")
    queued = queued_ids(gallery)
    dispatcher = gallery.events.dispatcher(FAST).start()
    try:
        receiver.wait_for(6, 60)
    finally:
        dispatcher.stop()
    in_order(receiver.ids(), queued)
    assert receiver.requests >= 10  # four refusals, retried
    assert gallery.events.pending() == []


@pytest.mark.timeout(180)
def test_a_receiver_down_for_30_seconds_gets_everything_after_in_order(
    gallery: facedb.FaceDB, receiver: Receiver
) -> None:
    made = gallery.events.add_webhook(receiver.url, types="person.renamed")
    receiver.secret = made.secret
    (person,) = people(gallery, 1)
    dispatcher = gallery.events.dispatcher(
        DeliverySettings(first_retry=0.5, max_retry=2.0, poll=0.2, lease=5.0, timeout=2.0)
    ).start()
    try:
        gallery.rename(person.id, "before")
        receiver.wait_for(1, 10)
        receiver.stop()  # the port is closed: connections are refused
        down = time.monotonic()
        while time.monotonic() - down < 30:  # events keep coming during the outage
            gallery.rename(person.id, f"during {time.monotonic() - down:.1f}")
            time.sleep(3)
        assert len(receiver.ids()) == 1
        assert gallery.events.pending()[0].attempts >= 3  # it kept trying, with backoff
        queued = queued_ids(gallery)
        receiver.start()
        up = time.monotonic()
        receiver.wait_for(1 + len(queued), 30)
        print(
            f"{len(queued)} events queued in a 30 s outage, delivered {time.monotonic() - up:.1f} s after it"
        )
    finally:
        dispatcher.stop()
    in_order(receiver.ids()[1:], queued)


@pytest.mark.timeout(120)
def test_a_slow_receiver_never_slows_the_writes(gallery: facedb.FaceDB, receiver: Receiver) -> None:
    made = gallery.events.add_webhook(receiver.url, types="person.renamed")
    receiver.secret = made.secret
    receiver.delay = 1.5
    (person,) = people(gallery, 1)
    dispatcher = gallery.events.dispatcher(FAST).start()
    try:
        started = time.monotonic()
        for i in range(10):
            gallery.rename(person.id, f"n{i}")
        took = time.monotonic() - started
        queued = [f"n{i}" for i in range(10)]
        # Waiting for the receiver would take 15 s; the margin is for a loaded machine's fsyncs.
        assert took < 5, f"10 renames took {took:.2f} s with a receiver that answers in 1.5 s"
        receiver.wait_for(10, 60)
    finally:
        dispatcher.stop()
    assert [e["data"]["person"]["name"] for e in receiver.got] == queued


@pytest.mark.timeout(120)
def test_given_up_events_are_dead_letters_until_retried(tmp_path: Path, receiver: Receiver) -> None:
    db_path = tmp_path / "g"
    with facedb.FaceDB(db_path) as db:
        made = db.events.add_webhook(receiver.url, types="person.renamed")
        receiver.secret = made.secret
        receiver.answer = lambda n: 503
        (person,) = people(db, 1)
        db.rename(person.id, "first")
        db.rename(person.id, "second")
        dispatcher = db.events.dispatcher(
            DeliverySettings(first_retry=0.1, max_retry=0.2, poll=0.1, give_up_after=1.0, lease=5.0)
        ).start()
        try:
            deadline = time.monotonic() + 30
            while len(db.events.failed()) < 2:
                assert time.monotonic() < deadline, db.events.pending()
                time.sleep(0.1)
        finally:
            dispatcher.stop()
        failed = db.events.failed()
        assert [e.data["person"]["name"] for e in failed] == ["first", "second"]
        assert all("HTTP 503" in (e.last_error or "") for e in failed)
        assert db.events.subscriptions()[0].failed == 2
    listed = run_cli("events", "list", "--failed", "--json", db=db_path)
    assert listed.returncode == 0, listed.stderr
    assert [e["event"]["id"] for e in json.loads(listed.stdout)] == [e.id for e in failed]
    receiver.answer = lambda n: 204
    again = run_cli("events", "retry", failed[0].id, db=db_path)
    assert again.returncode == 0 and "1 delivery" in again.stdout, again.stderr
    missing_event = run_cli("events", "retry", "evt_" + "0" * 32, db=db_path)
    assert missing_event.returncode == 4 and "no failed event" in missing_event.stderr
    assert run_cli("events", "retry", "--all", db=db_path).returncode == 0
    once = run_cli("events", "run", "--once", db=db_path)
    assert once.returncode == 0 and "2 event(s) delivered" in once.stderr, once.stderr
    assert receiver.ids() == [e.id for e in failed]


# -- a killed dispatcher -----------------------------------------------------------------------


def _events_run(db: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [str(FACEDB), "--db", str(db), "events", "run"],
            stdout=subprocess.DEVNULL,
            stderr=out,
            env={**CHILD_ENV, **env},
        )


@pytest.mark.timeout(180)
def test_sigkill_mid_delivery_loses_nothing_and_repeats_are_recognisable(
    tmp_path: Path, receiver: Receiver
) -> None:
    db_path = tmp_path / "g"
    with facedb.FaceDB(db_path) as db:
        made = db.events.add_webhook(receiver.url, types="person.renamed")
        receiver.secret = made.secret
        (person,) = people(db, 1)
        for i in range(30):
            db.rename(person.id, f"n{i}")
        queued = queued_ids(db)
    receiver.delay = 0.2
    env = {"FACEDB_EVENTS_LEASE": "2", "FACEDB_EVENTS_POLL": "0.2", "FACEDB_EVENTS_FIRST_RETRY": "0.2"}
    child = _events_run(db_path, env, tmp_path / "run.log")
    try:
        deadline = time.monotonic() + 60
        while len(receiver.ids()) < 8:
            assert child.poll() is None, (tmp_path / "run.log").read_text()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)  # in the middle of a request, most likely
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(30)
    delivered_before = receiver.ids()
    before = len(delivered_before)
    assert before < 30
    with facedb.FaceDB(db_path) as db:
        # What was delivered and not recorded yet stays owed: a lane records at least every
        # second, so at most that second's events (1 / delay) and the one in flight.
        assert 0 < len(db.events.pending()) <= 30 - before + 1 / receiver.delay + 1
    restarted = _events_run(db_path, env, tmp_path / "run.log")
    try:
        receiver.wait_for(30, 60)
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(30)
    assert restarted.returncode == 0, (tmp_path / "run.log").read_text()
    in_order(receiver.ids(), queued)
    # The repeats, recognisable by id, are the last events the killed dispatcher delivered
    # and had not recorded yet (it records at least every second: a few events here).
    repeated = [i for i in receiver.ids()[before:] if i in delivered_before]
    assert repeated == delivered_before[before - len(repeated) :], (repeated, delivered_before)
    assert len(repeated) <= 1 / receiver.delay + 1
    with facedb.FaceDB(db_path) as db:
        assert db.events.pending() == []


# -- doors -------------------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_cli_events_commands(tmp_path: Path, receiver: Receiver) -> None:
    db = tmp_path / "g"
    added = run_cli(
        "events", "add", "webhook", receiver.url, "--types", "person.renamed,person.removed", db=db
    )
    assert added.returncode == 0, added.stderr
    secret = added.stdout.strip()
    assert secret.startswith("whsec_") and "shown only now" in added.stderr
    receiver.secret = secret
    listed = run_cli("events", "list", "--json", db=db)
    (sub,) = json.loads(listed.stdout)
    assert sub["types"] == ["person.renamed", "person.removed"] and "secret" not in sub
    assert secret not in listed.stdout
    table = run_cli("events", "list", db=db)
    assert receiver.url in table.stdout and secret not in table.stdout
    tested = run_cli("events", "test", str(sub["id"]), "--json", db=db)
    assert tested.returncode == 0, tested.stderr
    answer = json.loads(tested.stdout)
    assert answer["ok"] and answer["status"] == 204
    assert receiver.got[-1]["type"] == "subscription.test" and receiver.got[-1]["id"] == answer["event_id"]
    dead = run_cli("events", "add", "webhook", f"http://127.0.0.1:{free_port()}/x", db=db)
    dead_id = json.loads(run_cli("events", "list", "--json", db=db).stdout)[-1]["id"]
    refused = run_cli("events", "test", str(dead_id), db=db)
    assert dead.returncode == 0 and refused.returncode == 1 and "FAILED" in refused.stdout
    mqtt = run_cli("events", "add", "mqtt", "mqtt://127.0.0.1:1883/x", "--home-assistant", "--json", db=db)
    assert mqtt.returncode == 0 and json.loads(mqtt.stdout)["home_assistant"] is True
    bad = run_cli("events", "add", "webhook", "file:///etc/passwd", db=db)
    assert bad.returncode == 2 and bad.stderr.startswith("facedb: error:")
    assert run_cli("events", "remove", str(sub["id"]), db=db).returncode == 0
    gone = run_cli("events", "remove", str(sub["id"]), db=db)
    assert gone.returncode == 4 and "no event subscription" in gone.stderr


@pytest.mark.timeout(180)
def test_http_subscriptions_are_admin_only_and_serve_delivers_a_cli_write(
    tmp_path: Path, receiver: Receiver
) -> None:
    db = tmp_path / "g"
    with facedb.FaceDB(db) as gallery:
        (person,) = people(gallery, 1)
        keys = KeyStore(gallery.store)
        _, admin = keys.create("admin", "admin")
        _, enroll = keys.create("enroll", "door")
    env = {"FACEDB_EVENTS_POLL": "0.2"}
    server = Server(db)
    try:
        url = server.url + "/events/subscriptions"
        body = {"url": receiver.url, "types": ["person.renamed"]}
        assert httpx.post(url, json=body, headers={"X-API-Key": enroll}, timeout=30).status_code == 403
        assert httpx.get(url, headers={"X-API-Key": enroll}, timeout=30).status_code == 403
        assert httpx.get(url, timeout=30).status_code == 401
        made = httpx.post(url, json=body, headers={"X-API-Key": admin}, timeout=30)
        assert made.status_code == 201, made.text
        receiver.secret = made.json()["secret"]
        listed = httpx.get(url, headers={"X-API-Key": admin}, timeout=30).json()
        assert [s["id"] for s in listed] == [made.json()["id"]] and "secret" not in listed[0]
        tested = httpx.post(f"{url}/{made.json()['id']}/test", headers={"X-API-Key": admin}, timeout=30)
        assert tested.json()["ok"] is True
        # A CLI write with no dispatcher of its own: the server's delivers it.
        assert run_cli("rename", str(person.id), "Grace", db=db, env=env).returncode == 0
        receiver.wait_for(2, 30)
        assert receiver.got[-1]["type"] == "person.renamed"
        assert receiver.got[-1]["data"]["person"]["name"] == "Grace"
        queue = httpx.get(server.url + "/events/queue", headers={"X-API-Key": admin}, timeout=30)
        assert queue.status_code == 200 and queue.json() == []
        retry = httpx.post(
            server.url + "/events/retry", json={"all": True}, headers={"X-API-Key": admin}, timeout=30
        )
        assert retry.json() == {"queued": 0}
        doc = httpx.get(server.url + "/openapi.json", timeout=30).json()
        assert set(EVENT_TYPES) <= set(doc["webhooks"])
        assert "EventAnswer" in doc["components"]["schemas"]
        gone = httpx.delete(f"{url}/{made.json()['id']}", headers={"X-API-Key": admin}, timeout=30)
        assert gone.json() == {"removed": made.json()["id"]}
    finally:
        server.stop()
    assert "Traceback" not in server.log()


# -- MQTT --------------------------------------------------------------------------------------


class Listener:
    """An MQTT client subscribed to ``prefix/#`` and ``homeassistant/#`` that records every
    message (topic, payload, retained)."""

    def __init__(self, host: str, port: int, prefix: str) -> None:
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"listener-{prefix}")
        ready = threading.Event()

        def on_connect(c: Any, *_: Any) -> None:
            c.subscribe([(f"{prefix}/#", 1), ("homeassistant/#", 1)])

        def on_subscribe(*_: Any) -> None:
            ready.set()

        def on_message(c: Any, userdata: Any, message: Any) -> None:
            with self.lock:
                self.messages.append((message.topic, message.payload, bool(message.retain)))

        self.client.on_connect = on_connect
        self.client.on_subscribe = on_subscribe
        self.client.on_message = on_message
        self.client.connect(host, port)
        self.client.loop_start()
        assert ready.wait(10), "the listener could not subscribe"

    def on(self, topic: str) -> list[bytes]:
        with self.lock:
            return [p for t, p, _ in self.messages if t == topic]

    def wait(self, check: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, self.messages[-20:]
            time.sleep(0.05)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.mark.timeout(180)
def test_mqtt_qos1_topics_status_last_will_and_home_assistant(tmp_path: Path, faces_dir: Path) -> None:
    host, port = mqtt_broker()
    prefix = f"facedb-test-{time.monotonic_ns()}"
    db_path = tmp_path / "g"
    with facedb.FaceDB(db_path) as db:
        made = db.events.add_mqtt(f"mqtt://{host}:{port}/{prefix}", types="all", home_assistant=True)
        alex = db.enroll("Alex", sorted((faces_dir / "gallery" / "alex_lacamoire").glob("*.jp*g")))
        seen = db.identify(faces_dir / "probes" / "alex_lacamoire1.jpg")
        watcher = Watcher(db, "0", WatchSettings(rate=1, votes=1, window=1, cooldown=1))
        watcher.observe(datetime.now(UTC) - timedelta(seconds=5), seen)
        watcher.close()
        for i in range(5):
            db.rename(alex.id, f"Alex {i}")
        db.events.close()
        queued = [e.id for e in db.events.pending()]
        uid = db.facts.uid
        listener = Listener(host, port, prefix)
        assert db.events.test(made.subscription.id).ok
    status = f"{prefix}/status/kid"
    child = _events_run(
        db_path,
        {"FACEDB_INSTANCE": "kid", "FACEDB_EVENTS_POLL": "0.2", "FACEDB_EVENTS_LEASE": "2"},
        tmp_path / "run.log",
    )
    try:
        listener.wait(lambda: len(listener.on(f"{prefix}/person.renamed")) >= 5, 60)
        listener.wait(lambda: b"online" in listener.on(status), 10)
        child.send_signal(signal.SIGKILL)
        child.wait(30)
        listener.wait(lambda: listener.on(status)[-1:] == [b"offline"], 30)  # the last will
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(30)
        listener.close()
    events = [
        json.loads(p)
        for t, p, _ in listener.messages
        if t.startswith(prefix) and "/status/" not in t and "/people/" not in t
    ]
    test_events = [e for e in events if e["type"] == "subscription.test"]
    assert len(test_events) == 1
    in_order([e["id"] for e in events if e["type"] != "subscription.test"], queued)
    for e in events:
        assert json.dumps(e).count("template") == 0
    assert [e["type"] for e in events if e["type"] != "subscription.test"][:3] == [
        "person.enrolled",
        "person.identified",
        "visit.started",
    ]
    config_topic = f"homeassistant/sensor/facedb_{uid[:8]}/person_{alex.id}/config"
    config = json.loads(listener.on(config_topic)[0])
    assert (
        config["device_class"] == "timestamp"
        and config["state_topic"] == f"{prefix}/people/{alex.id}/last_seen"
    )
    assert listener.on(config["state_topic"])
    # The retained status is there for a client that connects later.
    late = Listener(host, port, prefix)
    try:
        late.wait(lambda: late.on(status) == [b"offline"], 10)
    finally:
        late.close()
    # Killed between the broker's acknowledgements and writing them down, a dispatcher leaves
    # them queued: the next one (once the lease ran out) publishes them again, same ids.
    time.sleep(2.5)
    again = Listener(host, port, prefix)
    try:
        once = run_cli("events", "run", "--once", db=db_path, env={"FACEDB_INSTANCE": "kid2"})
        assert once.returncode == 0, once.stderr
        with facedb.FaceDB(db_path) as db:
            assert db.events.pending() == []
        repeated = [
            json.loads(p)["id"]
            for t, p, _ in again.messages
            if t.startswith(prefix) and "/status/" not in t and "/people/" not in t
        ]
        assert set(repeated) <= set(queued)
    finally:
        again.close()


@pytest.mark.timeout(60)
def test_mqtt_broker_away_is_a_retried_failure(gallery: facedb.FaceDB) -> None:
    made = gallery.events.add_mqtt(f"mqtt://127.0.0.1:{free_port()}/x", types="person.renamed")
    (person,) = people(gallery, 1)
    gallery.rename(person.id, "x")
    assert not gallery.events.test(made.subscription.id).ok
    dispatcher = gallery.events.dispatcher(FAST).start()
    try:
        deadline = time.monotonic() + 20
        while gallery.events.pending()[0].attempts < 2:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        dispatcher.stop()
    assert "Connection" in (gallery.events.pending()[0].last_error or "")


@pytest.mark.timeout(10)
def test_backoff_doubles_up_to_its_limit() -> None:
    s = DeliverySettings()
    assert [s.backoff(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert s.backoff(30) == 300.0 and s.give_up_after == 24 * 3600
    assert np.isclose(FAST.backoff(2), 0.2)


@pytest.mark.timeout(240)
def test_a_file_watch_delivers_its_visits_before_it_exits(
    tmp_path: Path, receiver: Receiver, wheel_photos: Path
) -> None:
    import cv2

    photo = cv2.imread(str(wheel_photos / "yaoming.jpg"))
    size = (640, 480)
    frame = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    frame[: min(photo.shape[0], size[1]), : min(photo.shape[1], size[0])] = photo[: size[1], : size[0]]
    video = tmp_path / "door.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
    for _ in range(30):  # 3 s of Yao Ming
        writer.write(frame)
    writer.release()
    db = tmp_path / "g"
    with facedb.FaceDB(db) as gallery:
        gallery.enroll("Yao Ming", [wheel_photos / "yaoming.jpg"])
        receiver.secret = gallery.events.add_webhook(receiver.url, types="visit.started").secret
    receiver.delay = 0.5  # a slow receiver: the watch still waits for its events, bounded
    watched = run_cli("watch", str(video), "--json", db=db, env={"FACEDB_EVENTS_POLL": "0.2"})
    assert watched.returncode == 0, watched.stderr
    visits = json.loads(watched.stdout)
    assert [v["person"]["name"] for v in visits] == ["Yao Ming"]
    # Delivered before the command returned, not by a later dispatcher.
    assert [e["data"]["sighting"]["id"] for e in receiver.got] == [visits[0]["id"]]
    assert receiver.got[0]["data"]["source"] == "door.avi"
    assert "still queued" not in watched.stderr
    with facedb.FaceDB(db) as gallery:
        assert gallery.events.pending() == []


@pytest.mark.timeout(120)
def test_a_rekeyed_gallery_still_signs_with_the_secret(tmp_path: Path, receiver: Receiver) -> None:
    folder = tmp_path / "g"
    first, second = facedb.new_key(), facedb.new_key()
    with facedb.FaceDB(folder, key=first) as db:
        made = db.events.add_webhook(receiver.url, types="person.renamed")
        receiver.secret = made.secret
        db.rekey(second)  # the secret is resealed with the other sealed values
    with facedb.FaceDB(folder, key=second) as db:
        assert db.events.test(made.subscription.id).ok
    assert receiver.got[-1]["type"] == "subscription.test" and not receiver.bad


@pytest.mark.timeout(180)
def test_outbox_leases_and_delivery_on_postgresql(pg_url: str, tmp_path: Path, receiver: Receiver) -> None:
    with facedb.FaceDB(url=pg_url, cache_dir=tmp_path / "cache") as db:
        made = db.events.add_webhook(receiver.url, types="person.renamed,person.removed")
        receiver.secret = made.secret
        a, b = people(db, 2)
        with pytest.raises(RuntimeError):
            with db.writes.change() as change:
                change.event("person.renamed", {"person": {"id": a.id, "name": "x"}})
                raise RuntimeError("rolled back")
        for i in range(5):
            db.rename(a.id, f"a{i}")
        db.remove(b.id)
        queued = queued_ids(db)
        assert len(queued) == 6
        # Two dispatchers on one subscription: one holds the lease, the order is kept.
        one, two = db.events.dispatcher(FAST).start(), db.events.dispatcher(FAST).start()
        try:
            receiver.wait_for(6, 30)
            assert one.drain(10)
        finally:
            one.stop()
            two.stop()
        in_order(receiver.ids(), queued)
        assert db.events.pending() == []


@pytest.mark.timeout(120)
def test_on_postgresql_a_later_commit_never_overtakes_an_earlier_event(
    pg_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    """Event ids come from a sequence when inserted, not when committed: a write that queued
    event 9 and is still running while another commits event 10 must not let a dispatcher
    deliver 10 first. The write holds its subscriptions' rows until it commits, so the second
    waits (its event gets the later id and commits later)."""
    with (
        facedb.FaceDB(url=pg_url, cache_dir=tmp_path / "a") as slow,
        facedb.FaceDB(url=pg_url, cache_dir=tmp_path / "b") as fast,
    ):
        receiver.secret = slow.events.add_webhook(receiver.url, types="person.renamed").secret
        dispatcher = slow.events.dispatcher(
            DeliverySettings(first_retry=0.1, max_retry=1.0, poll=0.05, lease=5.0, timeout=5.0)
        ).start()
        queued = threading.Event()
        order: list[str] = []

        def long_write() -> None:
            with slow.writes.change() as change:
                change.event("person.renamed", {"person": {"id": 1, "name": "first"}})
                queued.set()
                time.sleep(1.0)  # still running while the other write tries to commit
            order.append("first committed")

        def quick_write() -> None:
            assert queued.wait(10)
            with fast.writes.change() as change:
                change.event("person.renamed", {"person": {"id": 2, "name": "second"}})
            order.append("second committed")

        threads = [threading.Thread(target=long_write), threading.Thread(target=quick_write)]
        try:
            for t in threads:
                t.start()
            join_all(threads, 30)
            receiver.wait_for(2, 30)
        finally:
            dispatcher.stop()
        assert order == ["first committed", "second committed"]
        assert [e["data"]["person"]["name"] for e in receiver.got] == ["first", "second"]


@pytest.mark.timeout(120)
def test_a_stranger_s_visit_names_the_stranger_and_nobody(gallery: facedb.FaceDB, faces_dir: Path) -> None:
    gallery.enroll("Alex", sorted((faces_dir / "gallery" / "alex_lacamoire").glob("*.jp*g")))
    gallery.events.add_webhook("http://127.0.0.1:9/hook", types="visit.started")
    unknown = gallery.identify(faces_dir / "probes" / "obama1.jpg")
    assert [r.status for r in unknown] == ["unknown"]
    watcher = Watcher(
        gallery, "rtsp://cam:secret@10.0.0.7/door", WatchSettings(rate=1, votes=1, window=1, cooldown=1)
    )
    watcher.observe(datetime.now(UTC), unknown)
    watcher.close()
    (visit,) = watcher.logged
    (event,) = gallery.events.pending()
    assert event.type == "visit.started" and event.timestamp == visit.first_seen
    assert event.data["person"] is None and event.data["stranger"] == {"id": visit.stranger_id}
    assert event.data["sighting"]["id"] == visit.id
    assert event.data["source"] == "rtsp://10.0.0.7/door"  # no password in an event
