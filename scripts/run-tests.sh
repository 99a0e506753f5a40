#!/usr/bin/env bash
# The whole test run behind `make test`: pytest (Python, CLI, real photos) and cargo test.
# Servers the tests need are started here on loopback and stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
status=0
$VENV/bin/python -m pytest -q || status=$?
cargo test --quiet || status=$?
exit $status
