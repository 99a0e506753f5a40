"""schemathesis against a live `facedb serve` with an admin key: the OpenAPI document must say
what the endpoints accept (no "schema validation mismatch"), every answer must match it, and
no request, alone or along the links (create a person, then get, rename, add faces, delete),
may get a 5xx. Configuration: tests/schemathesis.toml; real photos for the uploads:
tests/schemathesis_hooks.py."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

from tests.helpers import CHILD_ENV, ROOT, Server, cli, missing, run_command

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
EXAMPLES = 10  # per operation and phase; the stateful phase has its own count in the toml


def test_openapi_matches_what_the_service_does(tmp_path: Path, faces_dir: Path) -> None:
    if importlib.util.find_spec("schemathesis") is None or not SCHEMATHESIS.exists():
        missing("schemathesis is not installed (pip install -e '.[dev]')")
    db = tmp_path / "gallery"
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
