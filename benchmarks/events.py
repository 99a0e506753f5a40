"""What events cost and how fast they go, in one run on this machine.

* delivered/s: N events queued in one transaction (``change.event``), then one dispatcher
  delivers them to a webhook receiver on 127.0.0.1 (``http.server``, threaded, answering 204
  after verifying nothing) and, with ``--mqtt URL``, to an MQTT broker (QoS 1); events per
  second from the dispatcher's start until nothing is due.
* identify: ``db.identify(photo)`` of a photo with two enrolled faces, p50 and mean over
  ``--repeat`` calls, with 0, 1 and 10 webhook subscriptions that want ``person.identified``
  and a dispatcher delivering meanwhile (the configurations interleaved call by call, each
  going first in turn).
* watch: one visit started (``Watcher.observe`` of a frame's identifications: the visit's
  write, with a ``visit.started`` for every subscription), p50 and mean, with 0, 1 and 10
  subscriptions and a dispatcher delivering meanwhile.
* outage: the receiver's port closed while ``--backlog`` events are queued, then opened: the
  seconds from its return until every event was delivered (the dispatcher retries with its
  backoff capped at 1 s here, 300 s by default).

Run: ``.venv/bin/python benchmarks/events.py [--events 2000] [--repeat 40] [--mqtt mqtt://127.0.0.1:1883/bench]``.
Prints the machine's load average before and after (2 shared cores here: figures are only
comparable within one run) and writes JSON with ``--json OUT``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import facedb
from facedb.attendance import Watcher, WatchSettings
from facedb.events import DeliverySettings

FACES = Path(os.environ.get("FACEDB_TEST_FACES", Path(__file__).resolve().parents[2] / "shared" / "faces"))
SETTINGS = DeliverySettings(first_retry=0.2, max_retry=1.0, poll=0.5, lease=30.0, batch=200)


class _ReusingServer(ThreadingHTTPServer):
    """An HTTP server on a port that may be opened again at once (an outage ends)."""

    allow_reuse_address = True
    daemon_threads = True


class Receiver:
    """A webhook receiver on 127.0.0.1 that answers 204 and counts requests."""

    def __init__(self, port: int = 0) -> None:
        self.count = 0
        self.lock = threading.Lock()
        self.port = port
        self.start()

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver.lock:
                    receiver.count += 1
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = _ReusingServer(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def queue_events(db: facedb.FaceDB, n: int) -> None:
    """n person.renamed events, queued in one transaction."""
    with db.writes.change() as change:
        for i in range(n):
            change.event("person.renamed", {"person": {"id": 1, "name": f"n{i}"}, "previous_name": "x"})


def drain(db: facedb.FaceDB) -> float:
    """Seconds one dispatcher takes to deliver everything queued."""
    dispatcher = db.events.dispatcher(SETTINGS)
    started = time.perf_counter()
    dispatcher.start()
    while dispatcher.due():
        time.sleep(0.01)
    took = time.perf_counter() - started
    dispatcher.stop()
    db.events.forget(dispatcher)
    return took


def delivered_per_second(folder: Path, n: int, url: str, **options: Any) -> float:
    with facedb.FaceDB(folder) as db:
        db.events.add(url, types="person.renamed", **options)
        queue_events(db, n)
        return n / drain(db)


def latencies(samples: list[float]) -> dict[str, float]:
    return {"p50_ms": statistics.median(samples) * 1000, "mean_ms": statistics.fmean(samples) * 1000}


def identify_cost(folder: Path, receiver: Receiver, repeat: int) -> dict[str, dict[str, float]]:
    """identify with 0, 1 and 10 subscriptions to person.identified (interleaved)."""
    galleries = {}
    probe = FACES / "probes" / "obama_and_biden.jpg"
    for subs in (0, 1, 10):
        db = facedb.FaceDB(folder / f"identify-{subs}")
        db.enroll("Obama", sorted((FACES / "gallery" / "obama").glob("*.jp*g")))
        db.enroll("Biden", sorted((FACES / "gallery" / "biden").glob("*.jp*g")))
        for _ in range(subs):
            db.events.add_webhook(receiver.url, types="person.identified")
        dispatcher = db.events.dispatcher(SETTINGS).start()
        db.identify(probe)  # warm
        galleries[subs] = (db, dispatcher, [])
    for i in range(repeat):
        rigs = list(galleries.values())
        for db, _, samples in rigs[i % 3 :] + rigs[: i % 3]:  # each goes first in turn
            started = time.perf_counter()
            answer = db.identify(probe)
            samples.append(time.perf_counter() - started)
            assert len([r for r in answer if r.person is not None]) == 2
    out = {}
    for subs, (db, dispatcher, samples) in galleries.items():
        db.events.close()
        dispatcher.drain(30)
        dispatcher.stop()
        db.close()
        out[str(subs)] = latencies(samples)
    return out


def watch_cost(folder: Path, receiver: Receiver, repeat: int) -> dict[str, dict[str, float]]:
    """One visit started (its write with its events) with 0, 1 and 10 subscriptions."""
    rigs = {}
    probe = FACES / "probes" / "obama_and_biden.jpg"
    for subs in (0, 1, 10):
        db = facedb.FaceDB(folder / f"watch-{subs}")
        db.enroll("Obama", sorted((FACES / "gallery" / "obama").glob("*.jp*g")))
        seen = [r for r in db.identify(probe) if r.person is not None]
        for _ in range(subs):
            db.events.add_webhook(receiver.url, types="visit.started")
        dispatcher = db.events.dispatcher(SETTINGS).start()
        watcher = Watcher(db, "0", WatchSettings(rate=1, votes=1, window=1, cooldown=1))
        rigs[subs] = (db, dispatcher, watcher, seen, [])
    start = datetime.now(UTC)
    for i in range(repeat):
        at = start + timedelta(seconds=5 * i)  # past the cool-down: a new visit each time
        order = list(rigs.values())
        for _, _, watcher, seen, samples in order[i % 3 :] + order[: i % 3]:  # each first in turn
            began = time.perf_counter()
            started = watcher.observe(at, seen)
            samples.append(time.perf_counter() - began)
            assert len(started) == 1
    out = {}
    for subs, (db, dispatcher, watcher, _, samples) in rigs.items():
        watcher.close()
        dispatcher.drain(30)
        dispatcher.stop()
        db.close()
        out[str(subs)] = latencies(samples[1:])  # the first visit also opens a connection
    return out


def outage(folder: Path, backlog: int) -> dict[str, float]:
    receiver = Receiver()
    with facedb.FaceDB(folder / "outage") as db:
        db.events.add_webhook(receiver.url, types="person.renamed")
        receiver.stop()
        dispatcher = db.events.dispatcher(SETTINGS).start()
        queue_events(db, backlog)
        time.sleep(5)  # failing meanwhile, backing off
        receiver.start()
        back = time.perf_counter()
        while dispatcher.due() or db.events.pending():
            time.sleep(0.01)
        took = time.perf_counter() - back
        dispatcher.stop()
        db.events.forget(dispatcher)
    receiver.stop()
    return {"events": backlog, "seconds_after_return": took, "delivered": receiver.count}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--backlog", type=int, default=1000)
    parser.add_argument("--mqtt", help="an MQTT broker to measure too: mqtt://host:port/prefix")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    import logging

    logging.getLogger("facedb.events").setLevel(logging.ERROR)  # the outage's retries, expected
    load_before = os.getloadavg()
    print(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}")
    results: dict[str, Any] = {"load_before": load_before}
    receiver = Receiver()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        results["webhook_per_s"] = delivered_per_second(folder / "wh", args.events, receiver.url)
        rate = results["webhook_per_s"]
        print(f"webhook: {rate:.0f} events/s delivered ({args.events} events, one subscription)")
        if args.mqtt:
            results["mqtt_per_s"] = delivered_per_second(folder / "mq", args.events, args.mqtt)
            print(f"MQTT QoS 1: {results['mqtt_per_s']:.0f} events/s delivered")
        results["identify"] = identify_cost(folder, receiver, args.repeat)
        for subs, figures in results["identify"].items():
            p50, mean = figures["p50_ms"], figures["mean_ms"]
            print(f"identify, {subs:>2} subscription(s): p50 {p50:.1f} ms, mean {mean:.1f} ms")
        results["watch_visit"] = watch_cost(folder, receiver, args.repeat)
        for subs, figures in results["watch_visit"].items():
            p50, mean = figures["p50_ms"], figures["mean_ms"]
            print(f"visit started, {subs:>2} subscription(s): p50 {p50:.2f} ms, mean {mean:.2f} ms")
        results["outage"] = outage(folder, args.backlog)
        print(
            f"outage: {results['outage']['events']} events queued while the receiver was down, "
            f"all delivered {results['outage']['seconds_after_return']:.2f} s after it came back"
        )
    receiver.stop()
    load_after = os.getloadavg()
    results["load_after"] = load_after
    print(f"load average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
