#!/usr/bin/env bash
# Writes requirements-test.lock: the exact versions `make test` and `make demo` install, so that
# every machine tests the same set. Resolves facedb's dependencies (core, every extra and dev,
# as pyproject.toml lists them) and maturin afresh in a throw-away venv, newest that fit.
# Run it (`make lock`) to move the test environment forward on purpose; users who
# `pip install facedb-rs` still get ranges (tests/test_wheel.py tries both ends).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
tmp=$(mktemp -d /tmp/facedb-lock.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
"$PYTHON" -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install --quiet --upgrade pip
mapfile -t requirements < <("$PYTHON" - <<'PY'
import tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
extras = project["optional-dependencies"]
for line in ["maturin>=1.7,<2", *project["dependencies"], *extras["all"], *extras["dev"]]:
    print(line)
PY
)
"$tmp/venv/bin/pip" install --quiet "${requirements[@]}"
{
    echo "# The test environment, pinned: written by scripts/lock.sh (make lock) on $(date -u +%Y-%m-%d)"
    echo "# with $("$tmp/venv/bin/python" --version) on $(uname -m). Installed by the Makefile before the build."
    "$tmp/venv/bin/pip" freeze --all --exclude setuptools --exclude wheel
} > requirements-test.lock
echo "requirements-test.lock: $(grep -vc '^#' requirements-test.lock) packages"
