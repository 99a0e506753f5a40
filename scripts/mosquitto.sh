#!/usr/bin/env bash
# Starts a throwaway Mosquitto MQTT broker on a free loopback port for the tests, or stops it.
#   scripts/mosquitto.sh start DIR   -> prints the broker's URL (mqtt://127.0.0.1:PORT) on stdout
#   scripts/mosquitto.sh stop DIR
# Installs Debian's mosquitto package first when the broker is missing. The broker listens on
# 127.0.0.1 only, anonymous clients allowed (it is the tests' own), no persistence.
set -euo pipefail
action=${1:-}
dir=${2:-}
if [ -z "$dir" ]; then
    echo "usage: $0 start|stop DIR" >&2
    exit 2
fi

broker() {
    command -v mosquitto 2>/dev/null || { [ -x /usr/sbin/mosquitto ] && echo /usr/sbin/mosquitto; } || true
}

case "$action" in
start)
    if [ -z "$(broker)" ]; then
        echo "installing Mosquitto from Debian's packages..." >&2
        if [ "$(id -u)" != 0 ]; then
            echo "error: mosquitto is not installed and installing it needs root (apt-get install mosquitto)" >&2
            exit 1
        fi
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >&2
    fi
    bin=$(broker)
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    rm -rf "$dir"
    mkdir -p "$dir"
    cat >"$dir/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
persistence false
log_dest file $dir/broker.log
pid_file $dir/mosquitto.pid
CONF
    # Running as root, mosquitto drops to the user "mosquitto": it must be able to write here.
    if [ "$(id -u)" = 0 ] && id mosquitto >/dev/null 2>&1; then chown -R mosquitto "$dir"; fi
    "$bin" -c "$dir/mosquitto.conf" -d
    for _ in $(seq 1 100); do
        if python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1).close()" 2>/dev/null; then
            echo "$port" >"$dir/port"
            echo "mqtt://127.0.0.1:$port"
            exit 0
        fi
        sleep 0.1
    done
    echo "error: mosquitto did not listen on 127.0.0.1:$port" >&2
    cat "$dir/broker.log" >&2 || true
    exit 1
    ;;
stop)
    if [ -f "$dir/mosquitto.pid" ]; then
        pid=$(cat "$dir/mosquitto.pid")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -rf "$dir"
    ;;
*)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac
