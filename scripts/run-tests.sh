#!/usr/bin/env bash
# The whole test run behind `make test`: starts the servers the tests need on loopback
# (PostgreSQL, Milvus, the Mosquitto MQTT broker), installs the web page's test browser, runs
# pytest and cargo test, and stops the servers whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
PG_DIR=$(mktemp -d /tmp/facedb-test-pg.XXXXXX)
MILVUS_DIR=$(mktemp -d /tmp/facedb-test-milvus.XXXXXX)
MQTT_DIR=$(mktemp -d /tmp/facedb-test-mqtt.XXXXXX)
cleanup() {
    scripts/mosquitto.sh stop "$MQTT_DIR" || true
    scripts/milvus.sh stop "$MILVUS_DIR" || true
    scripts/postgres.sh stop "$PG_DIR" || true
}
trap cleanup EXIT

# A server that does not come up fails the run in CI (CI=true) instead of skipping its tests;
# outside CI its tests skip with the reason shown.
server_failed() {
    if [ "${CI:-}" = "true" ]; then
        echo "error: $1 could not be started: the tests that need it cannot run" >&2
        exit 1
    fi
    echo "warning: $1 could not be started; its tests will skip" >&2
}
if url=$(scripts/postgres.sh start "$PG_DIR"); then
    export FACEDB_TEST_POSTGRES_URL=$url FACEDB_TEST_POSTGRES_DATA=$PG_DIR
    echo "PostgreSQL for the tests: $url"
else
    server_failed PostgreSQL
fi
if uri=$(scripts/milvus.sh start "$MILVUS_DIR"); then
    export FACEDB_TEST_MILVUS_URI=$uri FACEDB_TEST_MILVUS_DATA=$MILVUS_DIR
    echo "Milvus for the tests: $uri (data in $MILVUS_DIR)"
else
    server_failed Milvus
fi

if mqtt=$(scripts/mosquitto.sh start "$MQTT_DIR"); then
    export FACEDB_TEST_MQTT_URL=$mqtt
    echo "Mosquitto for the tests: $mqtt"
else
    server_failed Mosquitto
fi

# The web page's browser test (tests/test_web.py) drives Debian's chromium.
scripts/browser.sh || server_failed "the test browser (chromium, chromium-driver)"

status=0
$VENV/bin/python -m pytest -q || status=$?
cargo test --quiet --features openvino || status=$?
exit $status
