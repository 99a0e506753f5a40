"""`facedb serve` for real: a uvicorn server on 127.0.0.1 in a child process, talked to over
HTTP."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

FACEDB = Path(sys.executable).with_name("facedb")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(db: Path, *args: str) -> str:
    result = subprocess.run(
        [str(FACEDB), "--db", str(db), *args], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


class Server:
    def __init__(self, db: Path, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [str(FACEDB), "--db", str(db), "serve", "--port", str(self.port), *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"server died: {self.process.stderr.read() if self.process.stderr else ''}"
                )
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise AssertionError("server did not start in 60 s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, faces_dir: Path) -> Iterator[dict[str, Any]]:
    db = tmp_path_factory.mktemp("service") / "gallery"
    cli(db, "import", str(faces_dir / "gallery"))
    keys = {
        scope: cli(db, "keys", "create", "--scope", scope, "--name", f"test {scope}")
        for scope in ("read", "enroll", "admin")
    }
    server = Server(db, "--max-upload-mb", "2")
    yield {"url": server.url, "keys": keys, "db": db, "server": server}
    server.stop()


def call(
    service: dict[str, Any], method: str, path: str, scope: str | None = "read", **kwargs: Any
) -> httpx.Response:
    headers = {"X-API-Key": service["keys"][scope]} if scope else {}
    return httpx.request(method, service["url"] + path, headers=headers, timeout=120, **kwargs)


def error_of(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    return str(body["error"]["message"])


def test_health_and_openapi(service: dict[str, Any]) -> None:
    health = httpx.get(service["url"] + "/health").json()
    assert health["status"] == "ok" and health["people"] == 5 and health["faces"] == 9 and health["index"]
    spec = httpx.get(service["url"] + "/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert any(
        s["type"] == "apiKey" and s["name"] == "X-API-Key" and s["in"] == "header" for s in schemes.values()
    )
    assert "/identify" in spec["paths"] and httpx.get(service["url"] + "/docs").status_code == 200


def test_keys_and_scopes(service: dict[str, Any], faces_dir: Path) -> None:
    error_of(call(service, "GET", "/people", scope=None), 401, "unauthorized")
    bad = httpx.get(service["url"] + "/people", headers={"X-API-Key": "fdb_not-a-real-key"})
    error_of(bad, 401, "unauthorized")
    assert call(service, "GET", "/people").status_code == 200
    photo = {"photos": ("a.jpg", (faces_dir / "gallery/obama/obama.jpg").read_bytes(), "image/jpeg")}
    error_of(call(service, "POST", "/people", data={"name": "x"}, files=photo), 403, "forbidden")
    error_of(call(service, "DELETE", "/people/1", scope="enroll"), 403, "forbidden")


def test_revoked_key_is_refused(service: dict[str, Any]) -> None:
    secret = cli(service["db"], "keys", "create", "--scope", "read")
    listing = cli(service["db"], "keys", "list")
    key_id = listing.splitlines()[-1].split()[0]
    assert httpx.get(service["url"] + "/people", headers={"X-API-Key": secret}).status_code == 200
    cli(service["db"], "keys", "revoke", key_id)
    error_of(httpx.get(service["url"] + "/people", headers={"X-API-Key": secret}), 401, "unauthorized")


def test_identify_has_the_cli_shape(service: dict[str, Any], faces_dir: Path) -> None:
    photo = (faces_dir / "probes/obama_and_biden.jpg").read_bytes()
    doc = call(service, "POST", "/identify", files={"photo": ("group.jpg", photo, "image/jpeg")}).json()
    assert doc["image"] == "group.jpg"
    assert [f["person"]["name"] if f["person"] else None for f in doc["faces"]] == ["biden", "obama", None]
    assert set(doc["faces"][0]) == {"bbox", "score", "person", "similarity", "ambiguous", "candidates"}
    wall = np.full((50, 50, 3), 128, dtype=np.uint8)
    import cv2

    blank = cv2.imencode(".png", wall)[1].tobytes()
    empty = call(service, "POST", "/identify", files={"photo": ("wall.png", blank, "image/png")})
    assert empty.status_code == 200 and empty.json()["faces"] == []


def test_enroll_rename_add_delete(service: dict[str, Any], faces_dir: Path) -> None:
    photos = [("photos", ("r1.jpg", (faces_dir / "closeups/rose_leslie.jpg").read_bytes(), "image/jpeg"))]
    made = call(
        service,
        "POST",
        "/people",
        scope="enroll",
        data={"name": "Rose L", "metadata": '{"badge": 7}'},
        files=photos,
    )
    error_of(made, 422, "enrollment_refused")  # she is enrolled already as rose_leslie
    made = call(
        service,
        "POST",
        "/people",
        scope="enroll",
        data={"name": "Rose L", "metadata": '{"badge": 7}', "force": "true"},
        files=photos,
    )
    assert made.status_code == 201, made.text
    person = made.json()
    assert person["metadata"] == {"badge": 7} and person["face_count"] == 1
    renamed = call(service, "PATCH", f"/people/{person['id']}", scope="enroll", json={"name": "Rose"})
    assert renamed.json()["name"] == "Rose"
    more = [("photos", ("r2.jpg", (faces_dir / "gallery/rose_leslie/img1.jpg").read_bytes(), "image/jpeg"))]
    added = call(
        service, "POST", f"/people/{person['id']}/faces", scope="enroll", data={"force": "true"}, files=more
    )
    assert added.status_code == 200 and added.json()["face_count"] == 2
    assert call(service, "DELETE", f"/people/{person['id']}", scope="admin").status_code == 200
    error_of(call(service, "GET", f"/people/{person['id']}"), 404, "person_not_found")


def test_bad_requests_say_what_was_wrong(service: dict[str, Any], faces_dir: Path) -> None:
    not_image = call(service, "POST", "/identify", files={"photo": ("x.jpg", b"hello", "image/jpeg")})
    assert "not a recognised image format" in error_of(not_image, 422, "image_invalid")
    big = b"\xff\xd8" + b"\0" * (3 * 1024 * 1024)
    error_of(
        call(service, "POST", "/identify", files={"photo": ("big.jpg", big, "image/jpeg")}),
        413,
        "image_too_large",
    )
    from tests.test_engine import png_header_claiming

    bomb = png_header_claiming(50_000, 50_000)
    error_of(
        call(service, "POST", "/identify", files={"photo": ("bomb.png", bomb, "image/png")}),
        413,
        "image_too_large",
    )
    wall = (faces_dir / "gallery/obama/obama.jpg").read_bytes()
    nothing = call(
        service,
        "POST",
        "/verify",
        files={"a": ("a.jpg", wall, "image/jpeg"), "b": ("b.png", png_header_claiming(10, 10), "image/png")},
    )
    assert nothing.status_code in (413, 422)
    error_of(call(service, "GET", "/people/999999"), 404, "person_not_found")
    error_of(call(service, "POST", "/identify"), 422, "invalid_request")
    error_of(call(service, "POST", "/search", json={"embedding": [0.1, 0.2], "k": 1}), 422, "invalid_config")
    error_of(
        call(
            service,
            "POST",
            "/people",
            scope="enroll",
            data={"name": "x", "metadata": "[1]"},
            files=[("photos", ("a.jpg", wall, "image/jpeg"))],
        ),
        422,
        "invalid_config",
    )
    assert service["server"].process.poll() is None, "the server must survive bad input"
    assert call(service, "GET", "/people").status_code == 200


def test_half_enrolled_person_never_appears(service: dict[str, Any], faces_dir: Path) -> None:
    before = len(call(service, "GET", "/people").json())
    files = [
        ("photos", ("ok.jpg", (faces_dir / "gallery/kit_harington/john1.jpeg").read_bytes(), "image/jpeg")),
        ("photos", ("bad.jpg", b"garbage", "image/jpeg")),
    ]
    error_of(
        call(service, "POST", "/people", scope="enroll", data={"name": "Half", "force": "true"}, files=files),
        422,
        "enrollment_refused",
    )
    assert len(call(service, "GET", "/people").json()) == before


def test_verify_and_search(service: dict[str, Any], faces_dir: Path) -> None:
    a = (faces_dir / "gallery/obama/obama.jpg").read_bytes()
    b = (faces_dir / "probes/obama1.jpg").read_bytes()
    doc = call(
        service, "POST", "/verify", files={"a": ("a.jpg", a, "image/jpeg"), "b": ("b.jpg", b, "image/jpeg")}
    )
    assert doc.json()["same_person"] is True
    import facedb

    template = facedb.embedding(faces_dir / "probes/obama1.jpg").tolist()
    (row,) = call(service, "POST", "/search", json={"embedding": template, "k": 2}).json()
    assert row[0]["name"] == "obama" and len(row) == 2


def test_concurrent_identify(service: dict[str, Any], faces_dir: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    photo = (faces_dir / "probes/kit_with_rose.jpg").read_bytes()

    def one(_: int) -> list[str]:
        doc = call(service, "POST", "/identify", files={"photo": ("k.jpg", photo, "image/jpeg")}).json()
        return [f["person"]["name"] for f in doc["faces"]]

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(one, range(18)))
    assert all(a == ["rose_leslie", "kit_harington"] for a in answers), answers


def test_sightings_and_attendance(service: dict[str, Any], tmp_path: Path, wheel_photos: Path) -> None:
    """A watch run in another process logs into the same gallery; the service reports it."""
    import cv2

    video = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (233, 287))
    frame = cv2.imread(str(wheel_photos / "yaoming.jpg"))
    for _ in range(10):
        writer.write(cv2.resize(frame, (233, 287)))
    writer.release()
    cli(service["db"], "enroll", "Yao Ming", str(wheel_photos / "yaoming.jpg"))
    cli(service["db"], "watch", str(video))
    visits = call(service, "GET", "/sightings").json()
    (yao,) = [v for v in visits if v["person"] and v["person"]["name"] == "Yao Ming"]
    assert yao["frames"] >= 3 and set(yao) >= {"first_seen", "last_seen", "similarity", "bbox", "source"}
    rows = call(service, "GET", "/attendance").json()
    assert [r["visits"] for r in rows if r["name"] == "Yao Ming"] == [1]
    error_of(call(service, "GET", "/attendance", params={"since": "not-a-date"}), 422, "invalid_request")
