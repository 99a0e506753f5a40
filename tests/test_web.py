"""The web page of `facedb serve`: sign-in and sessions, scopes, form tokens and escaping
through FastAPI's TestClient (fast), then the whole round in a real browser (headless
Debian chromium driven by selenium) against a live server, which also takes screenshots:
into a temporary folder, or into FACEDB_SCREENSHOTS when set (`make screenshots` sets it to
assets/ for README's web-*.png), so that a test run changes no tracked file."""

from __future__ import annotations

import io
import os
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

import facedb
from facedb.keys import KeyStore
from facedb.service import ServiceSettings, create_app

from .helpers import Server, cli, enroll_gallery, missing

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture(scope="module")
def gallery(tmp_path_factory: pytest.TempPathFactory, faces_dir: Path) -> Iterator[facedb.FaceDB]:
    db = facedb.FaceDB(tmp_path_factory.mktemp("web") / "gallery")
    enroll_gallery(db, faces_dir)
    yield db
    db.close()


@pytest.fixture(scope="module")
def keys(gallery: facedb.FaceDB) -> dict[str, str]:
    store = KeyStore(gallery.store)
    return {scope: store.create(scope, f"web {scope}")[1] for scope in ("read", "enroll", "admin")}


@pytest.fixture
def app_client(gallery: facedb.FaceDB) -> Iterator[TestClient]:
    with TestClient(create_app(gallery, ServiceSettings(auth_failures=1000)), follow_redirects=False) as c:
        yield c


def sign_in(client: TestClient, key: str) -> Any:
    form = client.get("/web/sign-in")
    assert form.status_code == 200, form.text
    token = CSRF.search(form.text)
    assert token, form.text
    return client.post("/web/sign-in", data={"key": key, "csrf": token.group(1)})


def csrf_of(client: TestClient, path: str = "/") -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    found = CSRF.search(page.text)
    assert found, page.text
    return found.group(1)


def person_id(db: facedb.FaceDB, name: str) -> int:
    (p,) = db.find(name)
    return p.id


def test_sign_in_sets_a_strict_http_only_expiring_cookie(
    app_client: TestClient, keys: dict[str, str]
) -> None:
    assert app_client.get("/").headers["location"].startswith("/web/sign-in")
    answer = sign_in(app_client, keys["read"])
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    (header,) = [v for k, v in answer.headers.multi_items() if k == "set-cookie" and "facedb_session" in v]
    cookie = SimpleCookie(header)["facedb_session"]
    assert cookie["httponly"] and cookie["samesite"].lower() == "strict" and cookie["path"] == "/"
    assert int(cookie["max-age"]) == 8 * 3600 and cookie["expires"]
    page = app_client.get("/")
    assert page.status_code == 200 and "obama" in page.text
    assert (
        page.headers["cache-control"] == "no-store"
        and "frame-ancestors 'none'" in page.headers["content-security-policy"]
    )


def test_a_wrong_key_is_refused_and_counted(gallery: facedb.FaceDB, keys: dict[str, str]) -> None:
    with TestClient(create_app(gallery, ServiceSettings(auth_failures=3)), follow_redirects=False) as c:
        for _ in range(3):
            answer = sign_in(c, "fdb_not-a-key")
            assert answer.status_code == 401 and "not a live API key" in answer.text
            assert "facedb_session" not in answer.headers.get("set-cookie", "")
        # The failed-key limit of the API holds for the sign-in form too: a wrong key is refused
        # without a look, the right one still signs in (nobody can lock another out).
        assert sign_in(c, "fdb_not-a-key").status_code == 429
        assert sign_in(c, keys["read"]).status_code == 303


def test_a_browsers_own_requests_are_not_failed_keys(gallery: facedb.FaceDB) -> None:
    with TestClient(create_app(gallery, ServiceSettings(auth_failures=2)), follow_redirects=False) as c:
        for _ in range(3):
            assert c.get("/favicon.ico").status_code == 404
            assert c.get("/web/static/facedb.css").status_code == 200
            assert c.get("/").status_code == 303
        assert c.get("/web/sign-in").status_code == 200


def test_sign_in_needs_the_forms_token(app_client: TestClient, keys: dict[str, str]) -> None:
    app_client.get("/web/sign-in")
    answer = app_client.post("/web/sign-in", data={"key": keys["read"], "csrf": "forged"})
    assert answer.status_code == 403 and "facedb_session" not in answer.headers.get("set-cookie", "")


def test_forms_need_the_sessions_token(
    app_client: TestClient, gallery: facedb.FaceDB, keys: dict[str, str]
) -> None:
    sign_in(app_client, keys["enroll"])
    pid = person_id(gallery, "biden")
    path = f"/web/people/{pid}/rename"
    assert app_client.post(path, data={"name": "x"}).status_code == 403
    assert app_client.post(path, data={"name": "x", "csrf": "0" * 64}).status_code == 403
    token = csrf_of(app_client, f"/web/people/{pid}")
    # A form from another site is refused by the guard before its body is read.
    cross = app_client.post(
        path, data={"name": "x", "csrf": token}, headers={"Origin": "https://evil.example"}
    )
    assert cross.status_code == 403
    assert gallery.get(pid).name == "biden"
    done = app_client.post(path, data={"name": "Joe Biden", "csrf": token})
    assert done.status_code == 303 and gallery.get(pid).name == "Joe Biden"
    assert "Renamed." in app_client.get(done.headers["location"]).text
    gallery.rename(pid, "biden")


def test_a_read_key_is_offered_no_changes_and_refused_them(
    app_client: TestClient, gallery: facedb.FaceDB, keys: dict[str, str]
) -> None:
    sign_in(app_client, keys["read"])
    people = app_client.get("/").text
    assert "/web/enroll" not in people
    pid = person_id(gallery, "obama")
    page = app_client.get(f"/web/people/{pid}").text
    assert "/rename" not in page and "/remove" not in page and "/photos" not in page
    assert app_client.get("/web/enroll").status_code == 403
    token = csrf_of(app_client)
    photo = ("x.jpg", b"not a photo", "image/jpeg")
    refused = app_client.post("/web/enroll", data={"name": "Mallory", "csrf": token}, files={"photos": photo})
    assert refused.status_code == 403 and "this needs &#39;enroll&#39;" in refused.text
    assert 'action="/web/enroll"' not in refused.text
    assert app_client.post(f"/web/people/{pid}/remove", data={"csrf": token}).status_code == 403
    assert gallery.find("Mallory") == [] and gallery.get(pid)


def test_an_enroll_key_cannot_remove_a_person(
    app_client: TestClient, gallery: facedb.FaceDB, keys: dict[str, str]
) -> None:
    sign_in(app_client, keys["enroll"])
    pid = person_id(gallery, "obama")
    page = app_client.get(f"/web/people/{pid}").text
    assert "/rename" in page and f"/web/people/{pid}/remove" not in page
    refused = app_client.post(f"/web/people/{pid}/remove", data={"csrf": csrf_of(app_client)})
    assert refused.status_code == 403 and gallery.get(pid)


def test_an_enroll_key_cannot_remove_a_persons_last_face(
    app_client: TestClient, gallery: facedb.FaceDB, keys: dict[str, str], wheel_photos: Path
) -> None:
    """The enroll key that may not remove a person removed their last face instead, leaving
    a person with no face; an admin's key may, as it may remove the person."""
    pid = gallery.create_person("Yao", wheel_photos / "yaoming.jpg").person.id
    (face,) = gallery.faces(pid)
    sign_in(app_client, keys["enroll"])
    refused = app_client.post(f"/web/faces/{face['id']}/remove", data={"csrf": csrf_of(app_client)})
    assert refused.status_code == 409 and "last face" in refused.text
    assert gallery.get(pid).face_count == 1
    app_client.post("/web/sign-out", data={"csrf": csrf_of(app_client)})
    sign_in(app_client, keys["admin"])
    done = app_client.post(f"/web/faces/{face['id']}/remove", data={"csrf": csrf_of(app_client)})
    assert done.status_code == 303 and gallery.get(pid).face_count == 0
    gallery.remove(pid)


def test_a_revoked_keys_session_ends(app_client: TestClient, gallery: facedb.FaceDB) -> None:
    store = KeyStore(gallery.store)
    key, secret = store.create("enroll", "soon revoked")
    sign_in(app_client, secret)
    token = csrf_of(app_client)
    store.revoke(key.id)
    assert app_client.get("/").headers["location"].startswith("/web/sign-in")
    pid = person_id(gallery, "obama")
    refused = app_client.post(f"/web/people/{pid}/rename", data={"name": "x", "csrf": token})
    assert refused.status_code == 303 and refused.headers["location"].startswith("/web/sign-in")
    assert gallery.get(pid).name == "obama"


def test_a_signed_out_session_is_refused_even_with_its_cookie(
    app_client: TestClient, keys: dict[str, str]
) -> None:
    sign_in(app_client, keys["read"])
    cookie = app_client.cookies["facedb_session"]
    out = app_client.post("/web/sign-out", data={"csrf": csrf_of(app_client)})
    assert out.status_code == 303
    app_client.cookies.set("facedb_session", cookie)
    assert app_client.get("/").status_code == 303


def test_names_are_escaped(app_client: TestClient, gallery: facedb.FaceDB, keys: dict[str, str]) -> None:
    pid = person_id(gallery, "alex_lacamoire")
    hostile = "<script>alert(1)</script>"
    gallery.rename(pid, hostile)
    try:
        sign_in(app_client, keys["admin"])
        for page in (app_client.get("/").text, app_client.get(f"/web/people/{pid}").text):
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and hostile not in page
    finally:
        gallery.rename(pid, "alex_lacamoire")


def test_thumbnails_need_a_read_key_or_session(
    app_client: TestClient, gallery: facedb.FaceDB, keys: dict[str, str]
) -> None:
    face = gallery.faces(person_id(gallery, "obama"))[0]
    assert face["has_thumbnail"]
    assert app_client.get(f"/faces/{face['id']}/thumbnail").status_code == 401
    api = app_client.get(f"/faces/{face['id']}/thumbnail", headers={"X-API-Key": keys["read"]})
    assert api.status_code == 200 and api.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(api.content)).size == (112, 112)
    assert app_client.get("/faces/999999/thumbnail", headers={"X-API-Key": keys["read"]}).status_code == 404
    page = f"/web/faces/{face['id']}/thumbnail"
    assert app_client.get(page).status_code == 303  # to the sign-in form
    sign_in(app_client, keys["read"])
    assert app_client.get(page).content == api.content


def test_refusals_are_listed_with_their_reasons(
    app_client: TestClient, gallery: facedb.FaceDB, keys: dict[str, str], faces_dir: Path
) -> None:
    sign_in(app_client, keys["enroll"])
    blank = io.BytesIO()
    Image.new("RGB", (200, 200), "white").save(blank, format="PNG")
    files = [
        ("photos", ("wall.png", blank.getvalue(), "image/png")),
        ("photos", ("obama.jpg", (faces_dir / "gallery/obama/obama.jpg").read_bytes(), "image/jpeg")),
    ]
    answer = app_client.post("/web/enroll", data={"name": "Nobody", "csrf": csrf_of(app_client)}, files=files)
    assert answer.status_code == 422
    assert "wall.png" in answer.text and "no face" in answer.text and "Traceback" not in answer.text
    assert gallery.find("Nobody") == []


def test_identify_draws_the_names(app_client: TestClient, keys: dict[str, str], faces_dir: Path) -> None:
    sign_in(app_client, keys["read"])
    photo = (faces_dir / "probes/obama_and_biden.jpg").read_bytes()
    answer = app_client.post(
        "/web/identify", data={"csrf": csrf_of(app_client)}, files={"photo": ("p.jpg", photo, "image/jpeg")}
    )
    assert answer.status_code == 200, answer.text
    assert 'src="data:image/jpeg;base64,' in answer.text
    assert ">biden<" in answer.text and ">obama<" in answer.text and "unknown" in answer.text
    broken = app_client.post(
        "/web/identify",
        data={"csrf": csrf_of(app_client)},
        files={"photo": ("b.jpg", b"garbage", "image/jpeg")},
    )
    assert broken.status_code == 422 and 'role="alert"' in broken.text


def test_identify_says_why_a_face_is_poor_and_numbers_the_rows(
    app_client: TestClient, keys: dict[str, str], wheel_photos: Path
) -> None:
    """players.jpg has faces too small or blurred to tell anybody by: their rows say why."""
    sign_in(app_client, keys["read"])
    photo = (wheel_photos / "players.jpg").read_bytes()
    answer = app_client.post(
        "/web/identify", data={"csrf": csrf_of(app_client)}, files={"photo": ("p.jpg", photo, "image/jpeg")}
    )
    assert answer.status_code == 200, answer.text
    assert "poor quality: " in answer.text and any(
        why in answer.text for why in ("too small", "blurred", "turned away")
    )
    assert "<td>22</td>" in answer.text  # a row per face, numbered as the drawing's labels


def test_attendance_exports_csv(app_client: TestClient, keys: dict[str, str]) -> None:
    sign_in(app_client, keys["read"])
    assert app_client.get("/web/attendance").status_code == 200
    assert app_client.get("/web/attendance?day=yesterday").status_code == 422
    export = app_client.get("/web/attendance.csv?day=2026-01-02")
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    assert 'filename="attendance-2026-01-02.csv"' in export.headers["content-disposition"]
    assert export.text.splitlines()[0] == "day,person_id,name,stranger_id,first_seen,last_seen,visits"
    assert app_client.get("/web/review").status_code == 200


# -- a real browser ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian chromium through chromium-driver (scripts/browser.sh installs them)."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service as DriverService
    except ImportError:
        missing("selenium is not installed (pip install -e '.[dev]')")
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        missing("chromium and chromium-driver are not installed (bash scripts/browser.sh)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(chromium)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,800"):
        options.add_argument(flag)
    b = webdriver.Chrome(options=options, service=DriverService(executable_path=str(driver)))
    b.set_page_load_timeout(60)
    yield b
    b.quit()


@pytest.mark.timeout(240)
def test_in_a_browser(browser: Any, tmp_path: Path, faces_dir: Path) -> None:
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as expected
    from selenium.webdriver.support.wait import WebDriverWait

    db = tmp_path / "gallery"
    for person in ("biden", "obama"):
        cli(db, "enroll", person, *sorted(str(p) for p in (faces_dir / "gallery" / person).iterdir()))
    admin = cli(db, "keys", "create", "--scope", "admin", "--name", "front desk")
    server = Server(db)
    assets = Path(os.environ.get("FACEDB_SCREENSHOTS") or tmp_path / "screenshots")
    assets.mkdir(parents=True, exist_ok=True)

    def screenshot(name: str) -> None:
        """The window as a 256-colour PNG (a third of the size; README shows them)."""
        shot = Image.open(io.BytesIO(browser.get_screenshot_as_png())).convert("RGB")
        shot.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(assets / name, optimize=True)

    def css(selector: str) -> Any:
        return browser.find_element(By.CSS_SELECTOR, selector)

    def submit(selector: str, confirm: bool = False) -> None:
        """Clicks a form's button and waits for the next page (a click does not wait)."""
        page = css("html")
        css(selector).click()
        if confirm:
            WebDriverWait(browser, 30).until(expected.alert_is_present()).accept()

        def left(_: Any) -> bool:
            # The old page's element is gone. Chromium may say so as a stale element, or (while
            # the next page replaces it) as "Node ... does not belong to the document", which
            # selenium's staleness_of does not expect (CI failed on it once).
            try:
                page.is_enabled()
            except WebDriverException:
                return True
            return False

        WebDriverWait(browser, 60).until(left)

    try:
        browser.get(server.url + "/")
        assert "/web/sign-in" in browser.current_url
        css("#key").send_keys(admin)
        submit("form[action='/web/sign-in'] button")
        assert browser.current_url == server.url + "/"
        assert {e.text for e in browser.find_elements(By.CSS_SELECTOR, ".person .name")} == {"biden", "obama"}

        # Enroll by upload: the file input of the drop zone, posted as multipart.
        browser.get(server.url + "/web/enroll")
        css("#name").send_keys("Kit Harington")
        photos = sorted(str(p) for p in (faces_dir / "gallery" / "kit_harington").iterdir())
        css("input[name=photos]").send_keys("\n".join(photos))
        submit("form[action='/web/enroll'] button[type=submit]")
        assert "2 faces added" in css("#enrolled").text
        browser.get(server.url + "/")
        names = {e.text for e in browser.find_elements(By.CSS_SELECTOR, ".person .name")}
        assert names == {"biden", "obama", "Kit Harington"}
        # Each card shows a thumbnail the browser could load (a broken image has no width),
        # once the browser has them all (a third may still be loading just after the page).
        script = (
            "return Array.from(document.querySelectorAll('img.thumb')).map(i => i.complete && i.naturalWidth)"
        )
        WebDriverWait(browser, 30).until(lambda b: all(b.execute_script(script)))
        assert browser.execute_script(script) == [112, 112, 112]
        screenshot("web-people.png")

        # Identify a probe photo: the drawn photo and the name are on the page.
        browser.get(server.url + "/web/identify")
        css("input[name=photo]").send_keys(str(faces_dir / "probes" / "kit_with_rose.jpg"))
        submit("form[action='/web/identify'] button[type=submit]")
        assert (
            "Kit Harington" in css("#faces").text and "unknown" in css("#faces").text
        )  # Rose is not enrolled
        assert css("img.drawing").get_attribute("src").startswith("data:image/jpeg;base64,")
        screenshot("web-identify.png")

        # Rename, on the person's page.
        submit("#faces a")
        rename = css("#new-name")
        rename.clear()
        rename.send_keys("Jon Snow")
        submit("form[action$='/rename'] button")
        assert css("#person-name").text.startswith("Jon Snow")
        assert "Renamed." in css(".notice").text
        screenshot("web-person.png")

        # Remove (the page asks first), and they are gone.
        submit("#remove-person", confirm=True)
        assert "removed" in css(".notice").text
        names = {e.text for e in browser.find_elements(By.CSS_SELECTOR, ".person .name")}
        assert names == {"biden", "obama"}
        assert cli(db, "people", "--json").count('"Jon Snow"') == 0

        # Signed out, the pages are the sign-in form again.
        submit("form[action='/web/sign-out'] button")
        assert "/web/sign-in" in browser.current_url
        assert "Signed out." in css(".notice").text
        browser.get(server.url + "/web/identify")
        assert "/web/sign-in" in browser.current_url
    finally:
        server.stop()


def test_faces_and_sightings_on_a_gallery_without_thumbnails(
    tmp_path: Path, faces_dir: Path, engine: facedb.FaceEngine
) -> None:
    from datetime import UTC, datetime

    with facedb.FaceDB(tmp_path / "g", engine=engine, thumbnails=False) as db:
        obama = db.enroll("obama", sorted((faces_dir / "gallery/obama").iterdir()))
        secret = KeyStore(db.store).create("enroll")[1]
        now = datetime.now(UTC)
        with db.store.write() as s:
            seen = [
                db.store.add_sighting(
                    s,
                    person_id=obama.id,
                    stranger_id=None,
                    source="door",
                    first_seen=now,
                    last_seen=now,
                    similarity=0.7,
                    bbox=[0, 0, 200, 200],
                    frames=3,
                    template=engine.embedding(faces_dir / "more" / photo),
                    thumbnail=b"\xff\xd8 a face" if photo == "obama.jpg" else None,
                )
                for photo in ("obama.jpg", "obama2.jpg")
            ]
        with TestClient(create_app(db), follow_redirects=False) as client:
            sign_in(client, secret)
            page = client.get(f"/web/people/{obama.id}").text
            assert "no thumbnail" in page and "/thumbnail" not in page
            face = db.faces(obama)[0]
            assert not face["has_thumbnail"] and db.thumbnail(face["id"]) is None
            assert client.get(f"/web/faces/{face['id']}/thumbnail").status_code == 404

            token = csrf_of(client)
            removed = client.post(
                f"/web/faces/{face['id']}/remove", data={"csrf": token, "person_id": str(obama.id)}
            )
            assert removed.status_code == 303 and db.get(obama.id).face_count == 1
            again = client.post(f"/web/faces/{face['id']}/remove", data={"csrf": token})
            assert again.status_code == 404 and f"no face with id {face['id']}" in again.text

            review = client.get("/web/review").text
            assert all(f"/web/sightings/{i}/reject" in review for i in seen)
            # The face a visit began with, beside its buttons; "?" for one without.
            assert f'src="/web/sightings/{seen[0]}/thumbnail"' in review
            assert f'src="/web/sightings/{seen[1]}/thumbnail"' not in review
            shown = client.get(f"/web/sightings/{seen[0]}/thumbnail")
            assert shown.status_code == 200 and shown.content == b"\xff\xd8 a face"
            assert client.get(f"/web/sightings/{seen[1]}/thumbnail").status_code == 404
            done = client.post(
                f"/web/sightings/{seen[0]}/confirm", data={"csrf": token, "person_id": str(obama.id)}
            )
            assert done.status_code == 303 and db.get(obama.id).face_count == 2
            done = client.post(f"/web/sightings/{seen[1]}/reject", data={"csrf": token})
            assert done.status_code == 303 and "Rejected" in client.get(done.headers["location"]).text
            assert f"/web/sightings/{seen[1]}/" not in client.get("/web/review").text
            missing_one = client.post("/web/sightings/999999/reject", data={"csrf": token})
            assert missing_one.status_code == 404 and 'role="alert"' in missing_one.text


def test_groups_to_discover_name_and_dismiss(tmp_path: Path, faces_dir: Path) -> None:
    """The unnamed faces page: a read key sees the groups and their thumbnails, no forms; an
    enroll key discovers uploads, names a group (the gate's refusals listed) and dismisses one."""
    db = facedb.FaceDB(tmp_path / "g")
    store = KeyStore(db.store)
    read, enroll = store.create("read", "r")[1], store.create("enroll", "e")[1]
    with TestClient(create_app(db, ServiceSettings(auth_failures=1000)), follow_redirects=False) as client:
        sign_in(client, enroll)
        token = csrf_of(client, "/web/groups")
        photos = [
            ("photos", (p.name, p.read_bytes(), "image/jpeg"))
            for p in sorted((faces_dir / "gallery").glob("*/*.jp*g"))
        ]
        found = client.post("/web/discover", data={"csrf": token}, files=photos)
        assert found.status_code == 303, found.text
        page = client.get("/web/groups").text
        groups = db.groups()
        assert len(groups) == 5 and all(f'id="group-{g.id}"' in page for g in groups)
        face = groups[0].faces[0].id
        assert f"/web/groups/faces/{face}/thumbnail" in page
        picture = client.get(f"/web/groups/faces/{face}/thumbnail")
        assert picture.status_code == 200 and picture.content.startswith(b"\xff\xd8")
        first, second = groups[0], groups[1]
        named = client.post(f"/web/groups/{first.id}/name", data={"csrf": token, "name": "Found <b>One</b>"})
        assert named.status_code == 303 and named.headers["location"].startswith("/web/people/")
        (person,) = db.find("Found <b>One</b>")
        assert person.face_count == first.size
        # Another group is somebody else: naming it as that person is refused, with the reasons.
        refused = client.post(
            f"/web/groups/{second.id}/name", data={"csrf": token, "name": "Found <b>One</b>"}
        )
        assert refused.status_code == 422 and "Found &lt;b&gt;One&lt;/b&gt;" in refused.text
        assert db.group(second.id).size == second.size
        dismissed = client.post(f"/web/groups/{second.id}/dismiss", data={"csrf": token})
        assert dismissed.status_code == 303
        with pytest.raises(facedb.GroupNotFound):
            db.group(second.id)
        assert client.post(f"/web/groups/{second.id}/dismiss", data={"csrf": "wrong"}).status_code in (
            400,
            403,
        )
        # A read key: the groups, no forms, and the changes refused.
        client.post("/web/sign-out", data={"csrf": csrf_of(client, "/web/groups")})
        sign_in(client, read)
        page = client.get("/web/groups").text
        assert "/web/discover" not in page and "/dismiss" not in page
        token = csrf_of(client, "/web/groups")
        third = db.groups()[0]
        assert client.post(f"/web/groups/{third.id}/dismiss", data={"csrf": token}).status_code == 403
        assert db.group(third.id)
    db.close()


HUGE = "9223372036854775808"  # one past the largest BIGINT


def test_malformed_ids_and_tokens_are_refused_never_a_500(
    app_client: TestClient, gallery: facedb.FaceDB, keys: dict[str, str]
) -> None:
    """/web/people/9223372036854775808 and nine other web routes were a 500 (OverflowError);
    "²" passed isdigit() and failed int(); a non-ASCII cookie or form token was a 500 from
    compare_digest. The web page parses ids as the JSON API does."""
    sign_in(app_client, keys["admin"])
    token = csrf_of(app_client)
    routes = [
        ("GET", "/web/people/{}"),
        ("POST", "/web/people/{}/rename"),
        ("POST", "/web/people/{}/photos"),
        ("POST", "/web/people/{}/remove"),
        ("POST", "/web/faces/{}/remove"),
        ("GET", "/web/faces/{}/thumbnail"),
        ("POST", "/web/groups/{}/name"),
        ("POST", "/web/groups/{}/dismiss"),
        ("GET", "/web/groups/faces/{}/thumbnail"),
        ("POST", "/web/sightings/{}/confirm"),
        ("POST", "/web/sightings/{}/reject"),
    ]
    for method, path in routes:
        for bad in (HUGE, "²", "-1", "0"):
            answer = app_client.request(method, path.format(bad), data={"csrf": token, "name": "x"})
            assert 400 <= answer.status_code < 500, (method, path, bad, answer.status_code)
    pid = person_id(gallery, "obama")
    (face,) = gallery.faces(pid)[:1]
    for bad in ("²", HUGE, "x"):
        # A person id typed into a form: refused, or ignored where it only says where to go back.
        answer = app_client.post("/web/sightings/1/reject", data={"csrf": token, "person_id": bad})
        assert 400 <= answer.status_code < 500
        assert app_client.get(f"/web/attendance?days={bad}").status_code == 200
    assert app_client.post("/web/sign-out", data={"csrf": "j\u00e9ton"}).status_code < 500
    # Raw bytes: a browser's cookie header is not ASCII-checked (the server reads Latin-1).
    odd = app_client.get("/", headers={"Cookie": "facedb_session=1.2.n\u00f6nce.mac".encode()})
    assert odd.status_code < 500
    assert face  # the gallery's faces are untouched


def test_sign_out_is_exact_and_an_idle_session_ends() -> None:
    """The signed-out list was bounded: after 100,000 later sign-outs an old signed-out token
    worked again. Now a token counts only while its session is live."""
    from facedb.keys import ApiKey
    from facedb.service.web.sessions import MAX_LIVE, Sessions

    now = [1_000_000.0]
    key = ApiKey(1, "k", "fdb_x", "read", datetime.now(UTC), None)
    sessions = Sessions(lambda _: key, lifetime_seconds=3600, idle_seconds=600, clock=lambda: now[0])
    old = sessions.start(key)
    first = sessions.check(old)
    assert first is not None
    sessions.end(first)
    for _ in range(1000):  # later sign-ins and sign-outs push nothing out
        later = sessions.check(sessions.start(key))
        assert later is not None
        sessions.end(later)
    assert sessions.check(old) is None and MAX_LIVE >= 100_000
    idle = sessions.start(key)
    now[0] += 599
    assert sessions.check(idle) is not None  # used: its idle clock starts again
    now[0] += 599
    assert sessions.check(idle) is not None
    now[0] += 601
    assert sessions.check(idle) is None  # unused for longer than idle_seconds


def test_over_https_the_session_cookie_is_a_host_cookie(gallery: facedb.FaceDB, keys: dict[str, str]) -> None:
    with TestClient(create_app(gallery), base_url="https://testserver", follow_redirects=False) as c:
        answer = sign_in(c, keys["read"])
        assert answer.status_code == 303
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith("__Host-facedb_session=") and "Secure" in cookie and "Path=/" in cookie
        assert c.get("/").status_code == 200  # the __Host- cookie is the session
