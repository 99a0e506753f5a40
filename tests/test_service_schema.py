"""schemathesis against a live `facedb serve` with an admin key: the OpenAPI document must say
what the endpoints accept (no "schema validation mismatch"), every answer must match it, and
no request, alone or along the links (create a person, then get, rename, add faces, delete),
may get a 5xx. Configuration: tests/schemathesis.toml; real photos for the uploads:
tests/schemathesis_hooks.py."""

from __future__ import annotations

import importlib.util
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import facedb
from facedb.attendance import Watcher, WatchSettings
from tests.helpers import CHILD_ENV, ROOT, Server, cli, missing, run_command

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
EXAMPLES = 10  # per operation and phase; the stateful phase has its own count in the toml


def _seed(db: Path, faces_dir: Path, wheel_photos: Path) -> tuple[int, int]:
    """Real data for the operations on one group or one visit: groups of unnamed faces (people
    nobody enrolled yet: discover's) and today's visits of an enrolled person (a watch's).
    Returns how many of each."""
    with facedb.FaceDB(db) as gallery:
        gallery.discover(
            [
                *sorted((faces_dir / "closeups").glob("*.jpg")),
                wheel_photos / "yaoming.jpg",
                wheel_photos / "gdp.jpg",
            ]
        )
        gallery.enroll("Alex Lacamoire", sorted((faces_dir / "gallery" / "alex_lacamoire").glob("*.jp*g")))
        seen = gallery.identify(faces_dir / "probes" / "alex_lacamoire1.jpg")
        watcher = Watcher(gallery, "seed", WatchSettings(rate=1, votes=1, window=1, cooldown=1))
        now = datetime.now(UTC)
        for i in range(6):  # six visits: a new one every 5 s, after the 1 s cooldown
            watcher.observe(now + timedelta(seconds=5 * i), seen)
        watcher.close()
        return len(gallery.groups()), len(watcher.logged)


def test_openapi_matches_what_the_service_does(tmp_path: Path, faces_dir: Path, wheel_photos: Path) -> None:
    if importlib.util.find_spec("schemathesis") is None or not SCHEMATHESIS.exists():
        missing("schemathesis is not installed (pip install -e '.[dev]')")
    db = tmp_path / "gallery"
    groups, visits = _seed(db, faces_dir, wheel_photos)
    assert groups >= 4 and visits >= 6, (groups, visits)
    admin = cli(db, "keys", "create", "--scope", "admin")
    # schemathesis also sends wrong keys on purpose: they must not lock its address out.
    server = Server(db, "--auth-failures", "1000000")
    try:
        run = run_command(
            [
                str(SCHEMATHESIS),
                "--config-file",
                str(ROOT / "tests" / "schemathesis.toml"),
                "run",
                server.url + "/openapi.json",
                "--header",
                f"X-API-Key: {admin}",
                "--max-examples",
                str(EXAMPLES),
                "--seed",
                "1",
                "--workers",
                "1",
                "--generation-database",
                "none",
                "--no-color",
                "--output-truncate",
                "true",
            ],
            timeout=240,
            cwd=tmp_path,  # schemathesis leaves a cache folder in its working directory
            env={
                **CHILD_ENV,
                "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks",
                "FACEDB_TEST_FACES": str(faces_dir),
                "FACEDB_TEST_SERVER": server.url,
                "FACEDB_TEST_KEY": admin,
            },
        )
    finally:
        server.stop()
    output = run.stdout + run.stderr
    cases = re.search(r"(\d+) generated", output)
    links = re.search(r"API Links:\s+(\d+) covered", output)
    print(
        f"schemathesis: {cases.group(1) if cases else '?'} cases, "
        f"{links.group(1) if links else '?'} links followed, exit {run.returncode}"
    )
    assert "Schema validation mismatch" not in output, output[-5000:]
    assert "ST101" not in output, output[-5000:]  # ST101: a 5xx
    assert run.returncode == 0, output[-5000:]
    assert links and int(links.group(1)) >= 1, "the stateful phase followed no link"
    assert "Traceback" not in server.log(), server.log()[-3000:]
