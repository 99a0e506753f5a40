"""`facedb serve` for real: a uvicorn server on 127.0.0.1 in a child process, talked to over
HTTP."""

from __future__ import annotations

import io
import json
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

import facedb

from .helpers import IDENTIFICATION_FIELDS, Server, cli, unit_rows


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, faces_dir: Path) -> Iterator[dict[str, Any]]:
    db = tmp_path_factory.mktemp("service") / "gallery"
    cli(db, "import", str(faces_dir / "gallery"))
    keys = {
        scope: cli(db, "keys", "create", "--scope", scope, "--name", f"test {scope}")
        for scope in ("read", "enroll", "admin")
    }
    # Every test talks from 127.0.0.1: the rate limit is tested on a server of its own.
    server = Server(db, "--max-upload-mb", "2", "--max-photos", "4", "--auth-failures", "1000")
    yield {"url": server.url, "port": server.port, "keys": keys, "db": db, "server": server}
    server.stop()


def call(
    service: dict[str, Any], method: str, path: str, scope: str | None = "read", **kwargs: Any
) -> httpx.Response:
    headers = {"X-API-Key": service["keys"][scope]} if scope else {}
    return httpx.request(method, service["url"] + path, headers=headers, timeout=120, **kwargs)


def error_of(response: httpx.Response, status: int, code: str) -> str:
    """The message of an error answer, after checking its status, code and request id."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    assert set(body["error"]) == {"code", "message", "request_id"}, body
    assert body["error"]["request_id"] and body["error"]["request_id"] == response.headers["x-request-id"]
    return str(body["error"]["message"])


def test_anonymous_health_is_liveness_and_readiness_only(service: dict[str, Any]) -> None:
    def files() -> list[tuple[str, int, int]]:
        return [(p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(service["db"].rglob("*"))]

    before = files()
    anonymous = httpx.get(service["url"] + "/health")
    assert anonymous.status_code == 200 and anonymous.json() == {"status": "ok"}
    detailed = call(service, "GET", "/health").json()
    assert detailed["status"] == "ok" and detailed["people"] >= 5 and detailed["faces"] >= 9
    assert detailed["model"] and detailed["index"]
    # The threshold in force, and where it came from (no calibration yet: the model's prior at
    # the gallery's size, below the FMR-based default, with the FPIR it estimates).
    assert detailed["threshold"] < facedb.DEFAULT_THRESHOLD and detailed["threshold_source"] == "prior"
    assert f"{detailed['people']} people" in detailed["threshold_rule"]
    assert detailed["estimated_fpir"] == pytest.approx(0.01) and detailed["target_fpir"] == 0.01
    assert "threshold" not in anonymous.json()
    # A wrong key is not an anonymous call: it is refused (and counted), so /health is no
    # oracle for guessing keys.
    bad = httpx.get(service["url"] + "/health", headers={"X-API-Key": "fdb_guess"})
    error_of(bad, 401, "unauthorized")
    for _ in range(5):
        httpx.get(service["url"] + "/health")
    assert files() == before, "/health wrote to the gallery"


def same_fields(doc: dict[str, Any], schema: dict[str, Any], value: Any, where: str) -> None:
    """The documented schema names exactly the fields the live answer has, all the way down."""
    if "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    if "anyOf" in schema:
        if value is None:
            return
        schema = next(s for s in schema["anyOf"] if s.get("type") != "null")
        return same_fields(doc, schema, value, where)
    if schema.get("type") == "array" and "items" in schema:
        for i, item in enumerate(value):
            same_fields(doc, schema["items"], item, f"{where}[{i}]")
    elif "properties" in schema:
        assert set(value) == set(schema["properties"]), where
        for name, sub in schema["properties"].items():
            same_fields(doc, sub, value[name], f"{where}.{name}")


def test_documented_answers_are_the_answers(service: dict[str, Any], faces_dir: Path) -> None:
    doc = httpx.get(service["url"] + "/openapi.json", timeout=30).json()

    def documented(path: str, method: str, status: str = "200") -> dict[str, Any]:
        schema: dict[str, Any] = doc["paths"][path][method]["responses"][status]["content"][
            "application/json"
        ]
        return schema["schema"]

    photo = (faces_dir / "probes/obama_and_biden.jpg").read_bytes()
    answer = call(service, "POST", "/identify", files={"photo": ("g.jpg", photo, "image/jpeg")}).json()
    same_fields(doc, documented("/identify", "post"), answer, "identify")
    people = call(service, "GET", "/people").json()
    same_fields(doc, documented("/people", "get"), people, "people")
    one = call(service, "GET", f"/people/{people[0]['id']}").json()
    same_fields(doc, documented("/people/{person_id}", "get"), one, "person")
    pair = {"a": ("a.jpg", photo, "image/jpeg"), "b": ("b.jpg", photo, "image/jpeg")}
    same_fields(
        doc, documented("/verify", "post"), call(service, "POST", "/verify", files=pair).json(), "verify"
    )
    for path in ("/sightings", "/attendance"):
        same_fields(doc, documented(path, "get"), call(service, "GET", path).json(), path)
    for path, method in (("/people", "post"), ("/identify", "post"), ("/people/{person_id}", "delete")):
        for status in ("401", "403", "404", "413", "422"):
            assert status in doc["paths"][path][method]["responses"], (path, status)
    assert doc["components"]["schemas"]["FaceAnswer"]["examples"]


def test_docs_page_works_offline(service: dict[str, Any]) -> None:
    """Swagger UI's files come from the installed package, without a key and without a CDN."""
    page = httpx.get(service["url"] + "/docs", timeout=30)
    assert page.status_code == 200
    assert "cdn." not in page.text and "https://" not in page.text.split("<body>")[0]
    for name in ("swagger-ui-bundle.js", "swagger-ui.css"):
        asset = httpx.get(f"{service['url']}/docs/{name}", timeout=30)
        assert asset.status_code == 200 and len(asset.content) > 10_000, name
        assert f"/docs/{name}" in page.text
    redoc = httpx.get(service["url"] + "/redoc", timeout=30)
    assert redoc.status_code == 200 and "/docs/redoc.standalone.js" in redoc.text
    assert "https://" not in redoc.text.split("<body>")[0]
    assert len(httpx.get(service["url"] + "/docs/redoc.standalone.js", timeout=30).content) > 100_000


def test_a_server_without_keys_says_so_and_logs_requests_at_info(tmp_path: Path, faces_dir: Path) -> None:
    db = tmp_path / "g"
    facedb.FaceDB(db).close()
    server = Server(db, "--log-level", "info")
    try:
        assert httpx.get(server.url + "/people", timeout=30).status_code == 401
        secret = cli(db, "keys", "create", "--scope", "read", "--name", "door")
        answer = httpx.get(server.url + "/people", headers={"X-API-Key": secret}, timeout=30)
        assert answer.status_code == 200
        deadline = time.monotonic() + 10
        while "key=door" not in server.log() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        server.stop()
    log = server.log()
    assert "has no API key" in log and "keys create" in log
    assert '"GET /people" 401' in log and "key=- request=" in log
    request_id = answer.headers["x-request-id"]
    assert '"GET /people" 200' in log and f"key=door request={request_id}" in log
    assert secret not in log


@pytest.mark.timeout(180)
def test_serve_at_info_logs_no_library_chatter_and_names_the_web_page(tmp_path: Path) -> None:
    """`serve --log-level info` printed alembic's 'Context impl SQLiteImpl.' and faiss's
    'Could not load library with AVX512 support', which read as failures; the banner named
    /docs but not the web page."""
    db = tmp_path / "g"
    facedb.FaceDB(db).close()
    server = Server(db, "--log-level", "info")
    server.stop()
    log = server.log()
    assert "alembic" not in log and "faiss" not in log and "Could not load" not in log, log
    assert "uvicorn" in log  # info is still info: the server's own lines are there
    (banner,) = [line for line in log.splitlines() if line.startswith("facedb: serving")]
    words = banner.replace(",", " ").replace(";", " ").split()
    assert f"{server.url}/" in words and f"{server.url}/docs" in words, banner
    debug = Server(db, "--log-level", "debug")
    debug.stop()
    # At debug the libraries' own lines are there again. (Opening a gallery at this facedb's
    # schema loads neither alembic nor faiss any more: asyncio's line is the one left.)
    assert " DEBUG asyncio: " in debug.log() and " DEBUG " not in log


def test_openapi_describes_keys_errors_and_links(service: dict[str, Any]) -> None:
    spec = httpx.get(service["url"] + "/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert any(
        s["type"] == "apiKey" and s["name"] == "X-API-Key" and s["in"] == "header" for s in schemes.values()
    )
    assert "/identify" in spec["paths"] and httpx.get(service["url"] + "/docs").status_code == 200
    post = spec["paths"]["/people"]["post"]
    for status in ("401", "403", "404", "409", "413", "422", "429", "503"):
        assert status in post["responses"], status
    assert post["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    assert "Retry-After" in post["responses"]["429"]["headers"]
    assert set(post["responses"]["201"]["links"]) == {"GetPerson", "RenamePerson", "AddFaces", "DeletePerson"}
    assert any(p["name"] == "Idempotency-Key" for p in post["parameters"])
    embedding = spec["components"]["schemas"]["SearchRequest"]["properties"]["embedding"]
    assert embedding["anyOf"][0]["minItems"] == embedding["anyOf"][0]["maxItems"] == 512


def raw_request(service: dict[str, Any], head: str) -> socket.socket:
    """A socket that has sent `head` (request line and headers) and no body yet."""
    sock = socket.create_connection(("127.0.0.1", service["port"]), timeout=10)
    sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n")
    return sock


def read_answer(sock: socket.socket, timeout: float = 10.0) -> tuple[int, dict[str, str], dict[str, Any]]:
    """Status, headers and JSON body of the answer on a raw socket."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before an answer: {data!r}"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    while len(body) < int(headers.get("content-length", "0")):
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, json.loads(body)


def test_huge_declared_body_is_refused_before_it_is_sent(service: dict[str, Any]) -> None:
    for key in (service["keys"]["read"], None):
        start = time.monotonic()
        sock = raw_request(
            service,
            "POST /identify HTTP/1.1\nHost: x\nContent-Type: multipart/form-data; boundary=b\n"
            f"Content-Length: {1 << 30}\n" + (f"X-API-Key: {key}\n" if key else ""),
        )
        with sock:
            status, headers, body = read_answer(sock, timeout=5)
        elapsed = time.monotonic() - start
        assert status == 413 and body["error"]["code"] == "request_too_large", body
        assert body["error"]["request_id"] == headers["x-request-id"]
        assert elapsed < 1.0, f"a 1 GiB Content-Length was answered after {elapsed:.2f} s"
        print(f"1 GiB declared, no body sent: 413 after {elapsed * 1000:.0f} ms, 0 body bytes read")


PART_HEAD = (
    b'--b\r\nContent-Disposition: form-data; name="photo"; filename="big.jpg"\r\n'
    b"Content-Type: image/jpeg\r\n\r\n\xff\xd8"
)


def stream_until_answered(sock: socket.socket, total: int, chunk_size: int = 1 << 20) -> int:
    """Sends a chunked multipart body (one file part) of up to `total` bytes in 1 MB chunks
    until the server answers or closes; returns how many body bytes were sent by then."""
    sock.sendall(f"{len(PART_HEAD):x}\r\n".encode() + PART_HEAD + b"\r\n")
    chunk = f"{chunk_size:x}\r\n".encode() + b"\0" * chunk_size + b"\r\n"
    sent = len(PART_HEAD)
    while sent < total:
        readable, _, _ = select.select([sock], [], [], 0.02)
        if readable:
            break
        try:
            sock.sendall(chunk)
        except OSError:
            break
        sent += chunk_size
    return sent


def test_streamed_body_without_key_is_refused_after_few_bytes(service: dict[str, Any]) -> None:
    sock = raw_request(
        service,
        "POST /identify HTTP/1.1\nHost: x\nContent-Type: multipart/form-data; boundary=b\n"
        "Transfer-Encoding: chunked\n",
    )
    with sock:
        sent = stream_until_answered(sock, 400 << 20)
        status, _, body = read_answer(sock)
    assert status == 401 and body["error"]["code"] == "unauthorized", body
    print(f"400 MB streamed without a key: 401 after the client sent {sent} body bytes")
    assert sent < 16 << 20, f"the server let {sent} bytes in before refusing"


@pytest.mark.parametrize(("path", "limit_mb"), [("/identify", 3), ("/people", 9)])
def test_streamed_body_over_the_limit_is_cut_off(service: dict[str, Any], path: str, limit_mb: int) -> None:
    """With a valid key, a chunked body (no Content-Length) is refused when it passes the
    request limit, not read to its end: one photo (2 MB here) + 1 MB for /identify, four
    photos + 1 MB for an enrollment."""
    sock = raw_request(
        service,
        f"POST {path} HTTP/1.1\nHost: x\nContent-Type: multipart/form-data; boundary=b\n"
        f"Transfer-Encoding: chunked\nX-API-Key: {service['keys']['admin']}\n",
    )
    with sock:
        sent = stream_until_answered(sock, 400 << 20)
        status, _, body = read_answer(sock)
    assert status == 413 and body["error"]["code"] == "request_too_large", body
    print(f"400 MB streamed to {path} with a key, limit {limit_mb} MB: 413 after {sent / 2**20:.1f} MB sent")
    assert limit_mb << 20 <= sent < (limit_mb + 16) << 20


def test_files_per_request_are_bounded(service: dict[str, Any], faces_dir: Path) -> None:
    photo = (faces_dir / "gallery/obama/obama.jpg").read_bytes()
    files = [("photos", (f"{i}.jpg", photo, "image/jpeg")) for i in range(5)]
    message = error_of(
        call(service, "POST", "/people/1/faces", scope="admin", files=files), 422, "invalid_request"
    )
    assert "4" in message


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
    assert set(doc["faces"][0]) == IDENTIFICATION_FIELDS
    assert [f["status"] for f in doc["faces"]] == ["named", "named", "unknown"]
    # A strong read (documented in OpenAPI): the same answer from a local gallery, which is
    # always this fresh; anything else is a 422 naming the parameter.
    files = {"photo": ("group.jpg", photo, "image/jpeg")}
    strong = call(service, "POST", "/identify", params={"consistency": "strong"}, files=files)
    assert strong.status_code == 200 and strong.json() == doc
    assert "consistency" in error_of(
        call(service, "POST", "/identify", params={"consistency": "weak"}, files=files),
        422,
        "invalid_request",
    )
    wall = np.full((50, 50, 3), 128, dtype=np.uint8)
    import cv2

    blank = cv2.imencode(".png", wall)[1].tobytes()
    empty = call(service, "POST", "/identify", files={"photo": ("wall.png", blank, "image/png")})
    assert empty.status_code == 200 and empty.json()["faces"] == []


def test_largest_face_of_a_group_photo_over_http(service: dict[str, Any], faces_dir: Path) -> None:
    group = (faces_dir / "probes/obama_and_biden.jpg").read_bytes()
    files = [("photos", ("group.jpg", group, "image/jpeg"))]
    # force: the group's faces are enrolled already (the mislabel check would refuse).
    form = {"name": "group", "force": "true"}
    refused = call(service, "POST", "/people", scope="admin", data=form, files=files)
    message = error_of(refused, 422, "enrollment_refused")
    # "Take the largest face" in this door's terms: the form field, not Python's keyword.
    assert "3 faces found" in message and "(or largest_face=true)" in message, message
    made = call(service, "POST", "/people", scope="admin", data={**form, "largest_face": "true"}, files=files)
    assert made.status_code == 201 and len(made.json()["added"]) == 1
    call(service, "DELETE", f"/people/{made.json()['id']}", scope="admin")


def test_a_name_in_use_is_refused_unless_a_namesake_is_asked_for(
    service: dict[str, Any], faces_dir: Path, wheel_photos: Path
) -> None:
    """POST /people with the name of somebody enrolled made a second "obama" (201), whom
    identify then named for the photo's real owner: now it is refused, naming the id."""
    (obama,) = [p for p in call(service, "GET", "/people").json() if p["name"] == "obama"]
    yao = [("photos", ("yao.jpg", (wheel_photos / "yaoming.jpg").read_bytes(), "image/jpeg"))]
    refused = call(service, "POST", "/people", scope="enroll", data={"name": "obama"}, files=yao)
    message = error_of(refused, 409, "name_in_use")
    assert f"person {obama['id']}" in message and f"/people/{obama['id']}/faces" in message
    assert [p["name"] for p in call(service, "GET", "/people").json()].count("obama") == 1
    asked = {"name": "obama", "namesake": "true"}
    made = call(service, "POST", "/people", scope="enroll", data=asked, files=yao)
    assert made.status_code == 201 and made.json()["id"] != obama["id"], made.text
    call(service, "DELETE", f"/people/{made.json()['id']}", scope="admin")


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
    # force skips the mislabel check, so it needs the admin scope: an enroll key could
    # otherwise put its holder's face on anybody's record.
    forced = call(
        service,
        "POST",
        "/people",
        scope="enroll",
        data={"name": "Rose L", "metadata": '{"badge": 7}', "force": "true"},
        files=photos,
    )
    error_of(forced, 403, "forbidden")
    made = call(
        service,
        "POST",
        "/people",
        scope="admin",
        data={"name": "Rose L", "metadata": '{"badge": 7}', "force": "true"},
        files=photos,
    )
    assert made.status_code == 201, made.text
    person = made.json()
    assert person["metadata"] == {"badge": 7} and person["face_count"] == 1
    renamed = call(service, "PATCH", f"/people/{person['id']}", scope="enroll", json={"name": "Rose"})
    assert renamed.json()["name"] == "Rose"
    more = [("photos", ("r2.jpg", (faces_dir / "gallery/rose_leslie/img1.jpg").read_bytes(), "image/jpeg"))]
    error_of(
        call(
            service,
            "POST",
            f"/people/{person['id']}/faces",
            scope="enroll",
            data={"force": "true"},
            files=more,
        ),
        403,
        "forbidden",
    )
    added = call(
        service, "POST", f"/people/{person['id']}/faces", scope="admin", data={"force": "true"}, files=more
    )
    assert added.status_code == 200 and added.json()["face_count"] == 2
    assert call(service, "DELETE", f"/people/{person['id']}", scope="admin").status_code == 200
    error_of(call(service, "GET", f"/people/{person['id']}"), 404, "person_not_found")


def test_bad_requests_say_what_was_wrong(service: dict[str, Any], faces_dir: Path) -> None:
    not_image = call(service, "POST", "/identify", files={"photo": ("x.jpg", b"hello", "image/jpeg")})
    assert "not a recognised image format" in error_of(not_image, 422, "image_invalid")
    big = b"\xff\xd8" + b"\0" * (5 * 1024 * 1024 // 2)  # over the 2 MB photo limit
    error_of(
        call(service, "POST", "/identify", files={"photo": ("big.jpg", big, "image/jpeg")}),
        413,
        "image_too_large",
    )
    bigger = b"\xff\xd8" + b"\0" * (4 * 1024 * 1024)  # over the 3 MB limit of a request to /identify
    error_of(
        call(service, "POST", "/identify", files={"photo": ("big.jpg", bigger, "image/jpeg")}),
        413,
        "request_too_large",
    )
    from .helpers import png_header_claiming

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
    error_of(
        call(service, "POST", "/search", "admin", json={"embedding": [0.1, 0.2], "k": 1}),
        422,
        "invalid_config",
    )
    for ragged in ([[1, 2], [3]], [[0.1] * 512, [0.1] * 511], [], [[]]):
        message = error_of(
            call(service, "POST", "/search", "admin", json={"embedding": ragged}), 422, "invalid_config"
        )
        assert "embedding" in message and "Error" not in message, message
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
        call(service, "POST", "/people", scope="admin", data={"name": "Half", "force": "true"}, files=files),
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
    (row,) = call(service, "POST", "/search", "admin", json={"embedding": template, "k": 2}).json()
    assert row[0]["name"] == "obama" and len(row) == 2
    body = {"embedding": template, "k": 2, "consistency": "strong"}
    assert call(service, "POST", "/search", "admin", json=body).json() == [row]


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


def test_reject_and_confirm_a_sighting_and_the_audit(tmp_path: Path, wheel_photos: Path) -> None:
    """On a gallery of its own: Yao Ming's visit is rejected, then seen again as a stranger's
    and confirmed as his."""
    import cv2

    video = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (233, 287))
    frame = cv2.imread(str(wheel_photos / "yaoming.jpg"))
    for _ in range(10):
        writer.write(cv2.resize(frame, (233, 287)))
    writer.release()
    db = tmp_path / "gallery"
    cli(db, "enroll", "Yao Ming", str(wheel_photos / "yaoming.jpg"))
    keys = {scope: cli(db, "keys", "create", "--scope", scope) for scope in ("read", "enroll", "admin")}
    cli(db, "watch", str(video))
    server = Server(db)
    own = {"url": server.url, "keys": keys}
    try:
        (visit,) = call(own, "GET", "/sightings").json()
        assert visit["person"]["name"] == "Yao Ming"
        error_of(call(own, "POST", f"/sightings/{visit['id']}/reject", scope="read"), 403, "forbidden")
        answer = call(own, "POST", f"/sightings/{visit['id']}/reject", scope="enroll")
        assert answer.status_code == 200, answer.text
        assert answer.json()["sighting_id"] == visit["id"] and answer.json()["rejection_id"] >= 1
        assert call(own, "GET", "/sightings").json() == []  # the visit was not his
        gone = call(own, "POST", f"/sightings/{visit['id']}/reject", scope="enroll")
        error_of(gone, 404, "sighting_not_found")
        cli(db, "watch", str(video))  # now a stranger's visit
        (stranger,) = call(own, "GET", "/sightings").json()
        assert stranger["person"] is None and stranger["stranger_id"] is not None
        path = f"/sightings/{stranger['id']}/confirm"
        person = visit["person"]["id"]
        error_of(
            call(own, "POST", path, scope="enroll", json={"person_id": person, "force": True}),
            403,
            "forbidden",
        )
        confirmed = call(own, "POST", path, scope="enroll", json={"person_id": person})
        assert confirmed.status_code == 200, confirmed.text
        assert confirmed.json()["face_count"] == 2
        error_of(call(own, "GET", "/audit", scope="enroll"), 403, "forbidden")
        assert call(own, "GET", "/audit", scope="admin").json() == {"findings": []}
    finally:
        server.stop()


def test_errors_name_no_server_path_and_carry_request_ids(service: dict[str, Any]) -> None:
    missing = call(service, "GET", "/people/999999")
    message = error_of(missing, 404, "person_not_found")
    assert str(service["db"]) not in message and "/" not in message, message
    assert message == "no person with id 999999 in the gallery"
    echoed = httpx.get(
        service["url"] + "/people/999999",
        headers={"X-API-Key": service["keys"]["read"], "X-Request-ID": "door-7.42"},
    )
    assert echoed.headers["x-request-id"] == "door-7.42" == echoed.json()["error"]["request_id"]
    odd = httpx.get(service["url"] + "/people", headers={"X-Request-ID": "x" * 500})
    assert (
        odd.headers["x-request-id"] != "x" * 500
        and odd.json()["error"]["request_id"] == odd.headers["x-request-id"]
    )
    assert call(service, "GET", "/people").headers["x-request-id"]


def test_idempotent_enrollment_is_not_repeated(service: dict[str, Any], faces_dir: Path) -> None:
    photo = [
        ("photos", ("k.jpg", (faces_dir / "gallery/kit_harington/john1.jpeg").read_bytes(), "image/jpeg"))
    ]
    form = {"name": "Kit again", "force": "true"}
    people = len(call(service, "GET", "/people").json())

    def post(key: str, scope: str = "admin", **fields: str) -> httpx.Response:
        headers = {"X-API-Key": service["keys"][scope], "Idempotency-Key": key}
        return httpx.post(
            service["url"] + "/people", data={**form, **fields}, files=photo, headers=headers, timeout=120
        )

    first = post("enroll-kit-1")
    assert first.status_code == 201, first.text
    again = post("enroll-kit-1")
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers.get("idempotent-replayed") == "true" and "idempotent-replayed" not in first.headers
    assert len(call(service, "GET", "/people").json()) == people + 1
    error_of(post("enroll-kit-1", name="Somebody else"), 422, "idempotency_key_reused")
    # Keys are per key-holder: another client's same key is another request.
    other = cli(service["db"], "keys", "create", "--scope", "admin", "--name", "other client")
    theirs = httpx.post(
        service["url"] + "/people",
        data={**form, "namesake": "true"},  # a second person of this name, asked for
        files=photo,
        headers={"X-API-Key": other, "Idempotency-Key": "enroll-kit-1"},
        timeout=120,
    )
    assert theirs.status_code == 201 and theirs.json()["id"] != first.json()["id"]
    assert "idempotent-replayed" not in theirs.headers
    # Adding faces: the same key twice adds them once.
    more = [
        ("photos", ("k2.jpg", (faces_dir / "gallery/kit_harington/john2.jpeg").read_bytes(), "image/jpeg"))
    ]
    url = f"{service['url']}/people/{first.json()['id']}/faces"
    headers = {"X-API-Key": service["keys"]["admin"], "Idempotency-Key": "kit-faces-1"}
    added = [
        httpx.post(url, data={"force": "true"}, files=more, headers=headers, timeout=120) for _ in range(2)
    ]
    assert [a.status_code for a in added] == [200, 200] and added[0].json() == added[1].json()
    assert call(service, "GET", f"/people/{first.json()['id']}").json()["face_count"] == 2
    error_of(
        httpx.post(url, headers={**headers, "Idempotency-Key": "bad key"}, files=more, timeout=60),
        422,
        "invalid_request",
    )


def test_failed_keys_are_rate_limited_per_address(service: dict[str, Any]) -> None:
    """A server of its own (3 failures in 2 s): after three wrong keys a wrong key is refused
    with 429 and Retry-After, without the body being read; the right key is never refused for
    others' failures; requests without a key (ten <img> tags on any page the victim opens) and a
    rotating X-Forwarded-For neither count nor escape the limit; after the window it works."""
    server = Server(service["db"], "--auth-failures", "3", "--auth-window", "2")
    try:
        good = {"X-API-Key": service["keys"]["read"]}
        for _ in range(20):  # keyless: 401, never counted
            error_of(httpx.get(server.url + "/people"), 401, "unauthorized")
        assert httpx.get(server.url + "/people", headers={"X-API-Key": "fdb_guess"}).status_code == 401
        for i in range(2):
            forged = {"X-API-Key": "fdb_guess", "X-Forwarded-For": f"10.0.0.{i}"}
            error_of(httpx.get(server.url + "/people", headers=forged), 401, "unauthorized")
        limited = httpx.get(
            server.url + "/people", headers={"X-API-Key": "fdb_guess", "X-Forwarded-For": "10.9.9.9"}
        )
        error_of(limited, 429, "rate_limited")
        assert 1 <= int(limited.headers["retry-after"]) <= 2
        assert httpx.get(server.url + "/people", headers=good).status_code == 200  # never locked out
        start = time.monotonic()
        sock = raw_request(
            {"port": server.port},
            # A body announced and never sent: the answer comes without waiting for it.
            "POST /identify HTTP/1.1\nHost: x\nContent-Length: 100000\nX-API-Key: fdb_guess\n",
        )
        with sock:
            status, headers, _ = read_answer(sock, timeout=5)
        assert status == 429 and "retry-after" in headers and time.monotonic() - start < 1.0
        time.sleep(int(limited.headers["retry-after"]) + 0.2)
        error_of(httpx.get(server.url + "/people", headers={"X-API-Key": "fdb_guess"}), 401, "unauthorized")
    finally:
        server.stop()


@pytest.fixture
def app_client(tmp_path: Path, engine: Any) -> Iterator[tuple[Any, Any, str]]:
    """The application in this process (to break its parts on purpose), with a read key."""
    from fastapi.testclient import TestClient

    import facedb
    from facedb.keys import KeyStore
    from facedb.service import create_app

    db = facedb.FaceDB(tmp_path / "gallery", engine=engine)
    _, secret = KeyStore(db.store).create("read")
    with TestClient(create_app(db), raise_server_exceptions=False) as client:
        yield client, db, secret
    db.close()


def test_unexpected_errors_say_only_internal_error(
    app_client: tuple[Any, Any, str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    client, db, secret = app_client

    def broken() -> None:
        raise RuntimeError(f"disk on fire at {db.location}/gallery.db")

    monkeypatch.setattr(db, "people", broken)
    response = client.get("/people", headers={"X-API-Key": secret, "X-Request-ID": "req-1"})
    assert response.status_code == 500
    assert response.json() == {
        "error": {"code": "internal_error", "message": "internal error", "request_id": "req-1"}
    }
    assert response.headers["x-request-id"] == "req-1"
    assert any("req-1" in r.getMessage() and r.exc_info for r in caplog.records), "details go to the log"


def test_unavailable_vector_store_and_rate_limit_have_retry_after(
    app_client: tuple[Any, Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from facedb.errors import RateLimited, VectorStoreUnavailable
    from facedb.keys import KeyStore

    client, db, _ = app_client
    headers = {"X-API-Key": KeyStore(db.store).create("admin")[1]}  # /search is an admin's

    def loading(*_: Any, **__: Any) -> None:
        raise VectorStoreUnavailable(
            "collection at milvus://10.1.2.3:19530/faces still loading", retry_after=7
        )

    monkeypatch.setattr(db, "search", loading)
    response = client.post("/search", json={"embedding": [0.0] * 512}, headers=headers)
    assert error_of(response, 503, "vector_store_unavailable") == "collection at <url> still loading"
    assert response.headers["retry-after"] == "7"

    def limited(*_: Any, **__: Any) -> None:
        raise RateLimited("slow down", retry_after=2.5)

    monkeypatch.setattr(db, "search", limited)
    response = client.post("/search", json={"embedding": [0.0] * 512}, headers=headers)
    error_of(response, 429, "rate_limited")
    assert response.headers["retry-after"] == "3"


def test_health_is_unavailable_when_the_vector_store_is_not_usable(
    app_client: tuple[Any, Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, db, _ = app_client
    assert client.get("/health").json() == {"status": "ok"}

    class Down:
        kind = "down"
        location = "nowhere"

        def __len__(self) -> int:
            raise ConnectionError("no route to host")

    monkeypatch.setattr(db._ctx, "vectors", Down())  # what every part of the gallery reads
    response = client.get("/health")
    assert response.status_code == 503 and response.json() == {"status": "unavailable"}


def test_health_with_a_key_never_catches_the_index_up(
    app_client: tuple[Any, Any, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, engine: Any
) -> None:
    """Another process enrolled meanwhile: /health with a key counts it from SQL, and leaves
    the index alone (catching up writes the index files)."""
    import facedb

    client, db, secret = app_client
    with facedb.FaceDB(tmp_path / "gallery", engine=engine) as other:
        other.import_embeddings(["somebody"], unit_rows(11, 1))
    caught_up: list[bool] = []
    monkeypatch.setattr(db.vectors, "sync", lambda store: caught_up.append(True))
    body = client.get("/health", headers={"X-API-Key": secret}).json()
    assert body["status"] == "ok" and body["people"] == 1 and body["faces"] == 1
    assert caught_up == [], "/health caught the index up"


def test_a_refused_upload_is_named_by_its_file_name(service: dict[str, Any], faces_dir: Path) -> None:
    group = (faces_dir / "probes/obama_and_biden.jpg").read_bytes()
    refused = call(
        service,
        "POST",
        "/people",
        scope="enroll",
        data={"name": "team"},
        files=[("photos", ("../../secret/team-2026.jpg", group, "image/jpeg"))],
    )
    message = error_of(refused, 422, "enrollment_refused")
    assert "team-2026.jpg" in message and "bytes>" not in message and "secret" not in message


def test_groups_over_http(service: dict[str, Any], faces_dir: Path) -> None:
    """Discover uploads, list the groups, see a thumbnail (read key only), name a group
    (enroll key; force is an admin's) and dismiss one; every answer as documented."""
    doc = httpx.get(service["url"] + "/openapi.json", timeout=30).json()

    def documented(path: str, method: str) -> dict[str, Any]:
        schema: dict[str, Any] = doc["paths"][path][method]["responses"]["200"]["content"]["application/json"]
        return schema["schema"]

    party = (faces_dir / "probes/obama_and_biden.jpg").read_bytes()
    files = [("photos", ("party.jpg", party, "image/jpeg"))]
    error_of(call(service, "POST", "/discover", files=files), 403, "forbidden")  # a read key
    found = call(service, "POST", "/discover", "enroll", files=files)
    assert found.status_code == 200, found.text
    same_fields(doc, documented("/discover", "post"), found.json(), "discover")
    body = found.json()
    assert {n["person"]["name"] for n in body["named"]} == {"obama", "biden"}
    (group,) = body["groups"]  # the third face: nobody enrolled
    assert group["size"] == 1 and group["faces"][0]["photo"].startswith("party.jpg#")
    again = call(service, "POST", "/discover", "enroll", files=files).json()
    assert again["already"] == 1 and again["groups"] == []
    listed = call(service, "GET", "/groups")
    same_fields(doc, documented("/groups", "get"), listed.json(), "groups")
    assert group["id"] in [g["id"] for g in listed.json()]
    one = call(service, "GET", f"/groups/{group['id']}")
    same_fields(doc, documented("/groups/{group_id}", "get"), one.json(), "group")
    face = group["faces"][0]["id"]
    picture = call(service, "GET", f"/groups/faces/{face}/thumbnail")
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/jpeg"
    assert picture.content.startswith(b"\xff\xd8")
    error_of(call(service, "GET", f"/groups/faces/{face}/thumbnail", None), 401, "unauthorized")
    error_of(call(service, "GET", "/groups/faces/999999/thumbnail"), 404, "face_not_found")
    name = {"name": "Party Guest"}
    error_of(call(service, "POST", f"/groups/{group['id']}/name", json=name), 403, "forbidden")
    forced = {"name": "Party Guest", "force": True}
    error_of(call(service, "POST", f"/groups/{group['id']}/name", "enroll", json=forced), 403, "forbidden")
    error_of(call(service, "POST", "/groups/999999/name", "enroll", json=name), 404, "group_not_found")
    # The gate applies: the stranger's face is unlike biden's.
    refused = call(service, "POST", f"/groups/{group['id']}/name", "enroll", json={"name": "biden"})
    assert "biden" in error_of(refused, 422, "enrollment_refused")
    named = call(service, "POST", f"/groups/{group['id']}/name", "enroll", json=name)
    assert named.status_code == 200 and named.json()["name"] == "Party Guest" and named.json()["added"]
    error_of(call(service, "GET", f"/groups/{group['id']}"), 404, "group_not_found")
    call(service, "DELETE", f"/people/{named.json()['id']}", "admin")  # the module's gallery as it was
    # The same photo by another name is the same photo (its content): not looked at again.
    renamed = call(
        service, "POST", "/discover", "enroll", files=[("photos", ("party2.jpg", party, "image/jpeg"))]
    )
    assert renamed.json()["already"] == 1 and renamed.json()["groups"] == []
    # Another photo (the party mirrored: other bytes, the same stranger) is a new group, dismissed.
    mirrored = io.BytesIO()
    Image.open(io.BytesIO(party)).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(mirrored, "JPEG")
    files = [("photos", ("mirrored.jpg", mirrored.getvalue(), "image/jpeg"))]
    (other,) = call(service, "POST", "/discover", "enroll", files=files).json()["groups"]
    error_of(call(service, "DELETE", f"/groups/{other['id']}"), 403, "forbidden")
    dismissed = call(service, "DELETE", f"/groups/{other['id']}", "enroll")
    assert dismissed.json() == {"dismissed": other["id"]}
    error_of(call(service, "GET", f"/groups/{other['id']}"), 404, "group_not_found")
    error_of(call(service, "DELETE", f"/groups/{other['id']}", "enroll"), 404, "group_not_found")


def test_a_name_with_a_bidi_override_is_refused_over_http(service: dict[str, Any], faces_dir: Path) -> None:
    photo = [("photos", ("r.jpg", (faces_dir / "closeups/rose_leslie.jpg").read_bytes(), "image/jpeg"))]
    for name in ("Jeff\u202eBezos", "\u200b"):
        refused = call(service, "POST", "/people", "admin", data={"name": name, "force": "true"}, files=photo)
        error_of(refused, 422, "invalid_request")
    (anyone,) = call(service, "GET", "/people").json()[:1]
    renamed = call(service, "PATCH", f"/people/{anyone['id']}", "enroll", json={"name": "x\u2067y"})
    error_of(renamed, 422, "invalid_request")


@pytest.mark.parametrize("folder", ["people", "gallery", "/srv/faces/people"])
def test_redaction_keeps_the_words_of_a_message(folder: str) -> None:
    """With --db people, "where different people score" read "where different the gallery
    score"; with --db gallery, "the gallery's templates" read "the the gallery's templates"."""
    from facedb.service.redaction import redactor

    here = "/abs/where/it/is"
    places = {folder, f"{folder}/gallery.db", here, f"{here}/gallery.db", f"sqlite:///{here}/gallery.db"}
    public = redactor(places)
    for words in (
        "below 0.35, where different people score",
        "the gallery's templates have 512 dimensions",
        "add faces to them with POST /people/4/faces",
    ):
        assert public(words) == words
    assert public("cannot open /abs/where/it/is/gallery.db: locked") == "cannot open the gallery: locked"
    assert public("no space left in /var/lib/other/file.tmp") == "no space left in <path>"
    assert public("server at postgresql://u:pw@db:5432/x refused") == "server at <url> refused"
    if "/" in folder:
        assert public(f"no person with id 5 in {folder}") == "no person with id 5 in the gallery"


def test_no_server_path_reaches_a_client(service: dict[str, Any], tmp_path: Path, faces_dir: Path) -> None:
    """discover stores the absolute path of a photo it read from disk, and GET /groups showed
    it to read keys; a client sees the file name only."""
    import shutil

    folder = tmp_path / "secret-server-folder"
    folder.mkdir()
    mirrored = folder / "party.jpg"
    Image.open(faces_dir / "probes/obama_and_biden.jpg").transpose(Image.Transpose.FLIP_TOP_BOTTOM).save(
        mirrored
    )
    found = json.loads(cli(service["db"], "discover", str(folder), "--json"))  # the CLI keeps paths
    shutil.rmtree(folder)
    shown = [f["photo"] for g in call(service, "GET", "/groups").json() for f in g["faces"]]
    assert shown and not any("/" in p or "secret-server-folder" in p for p in shown), shown
    for g in found["groups"]:
        call(service, "DELETE", f"/groups/{g['id']}", "enroll")
