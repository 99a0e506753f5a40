#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server on a free loopback port for the tests, or stops it.
#   scripts/postgres.sh start DIR   -> prints the SQLAlchemy URL on stdout
#   scripts/postgres.sh restart DIR [SECONDS]  -> stops the server (fast mode: sessions are cut),
#                         waits SECONDS (default 0) and starts it again on the same port and data
#   scripts/postgres.sh stop DIR
# Installs Debian's postgresql package first when the server programs are missing.
set -euo pipefail
action=$1
dir=$2
down=${3:-0}

pg_bin() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

as_postgres() {
    # PostgreSQL refuses to run as root.
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_server() {
    as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=on" start >&2 || {
        cat "$dir/server.log" >&2
        exit 1
    }
    echo "postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
}

case "$action" in
start)
    if [ -z "$(pg_bin)" ]; then
        echo "installing PostgreSQL from Debian's packages..." >&2
        if [ "$(id -u)" != 0 ]; then
            echo "error: PostgreSQL is not installed and installing it needs root (apt-get install postgresql)" >&2
            exit 1
        fi
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    fi
    bin=$(pg_bin)
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    rm -rf "$dir"
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    as_postgres "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log" >&2
        exit 1
    }
    echo "$port" >"$dir/port"
    start_server
    ;;
restart)
    bin=$(pg_bin)
    port=$(cat "$dir/port")
    as_postgres "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >&2
    sleep "$down"
    start_server
    ;;
stop)
    bin=$(pg_bin)
    if [ -n "$bin" ] && [ -f "$dir/data/postmaster.pid" ]; then
        as_postgres "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >&2 || true
    fi
    rm -rf "$dir"
    ;;
*)
    echo "usage: $0 start|restart|stop DIR" >&2
    exit 2
    ;;
esac
