#!/usr/bin/env bash
# The whole test run behind `make test`: starts the servers the tests need on loopback
# (PostgreSQL), runs pytest and cargo test, and stops the servers whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
PG_DIR=$(mktemp -d /tmp/facedb-test-pg.XXXXXX)
trap 'scripts/postgres.sh stop "$PG_DIR"' EXIT

if url=$(scripts/postgres.sh start "$PG_DIR"); then
    export FACEDB_TEST_POSTGRES_URL=$url
    echo "PostgreSQL for the tests: $url"
else
    echo "warning: PostgreSQL could not be started; its tests will skip (or fail in CI)" >&2
fi

status=0
$VENV/bin/python -m pytest -q || status=$?
cargo test --quiet || status=$?
exit $status
