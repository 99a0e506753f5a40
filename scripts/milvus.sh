#!/usr/bin/env bash
# Starts a throwaway Milvus 2.3.5 standalone server for the tests, or stops it.
#   scripts/milvus.sh start DIR   -> prints the pymilvus URI (http://127.0.0.1:PORT) on stdout
#   scripts/milvus.sh restart DIR -> stops the server and starts it again on the same ports and
#                                    data (what an operator's restart does); prints the URI
#   scripts/milvus.sh stop DIR
# The server is PyPI's `milvus` wheel (a real Milvus: embedded etcd, rocksmq, local storage; no
# Docker), installed apart from the project's venv in .milvus-venv/ because its Python wrapper
# pins an old stack. Its binaries are unpacked once into .milvus-venv/milvus-home/bin.
#
# The wrapper's MilvusServerConfig writes DIR/configs/milvus.yaml from the wheel's template (data,
# logs, etcd and rocksmq under DIR, ports); this script then runs the binary itself in its own
# process group, so that `stop` can end all of it. Every port is chosen free on 127.0.0.1 and
# every component advertises 127.0.0.1. Milvus 2.3.5 itself listens on all interfaces for its
# gRPC and metrics ports (it binds ":PORT"; no setting changes that); the embedded etcd listens on
# 127.0.0.1 only.
#
# Erasure settings for the test server (measured: a deleted vector leaves every file under DIR
# about 60 s after the delete; docs/scaling.md states what an operator must set):
#   dataNode.segment.syncPeriod=10 s: a delete reaches a delete log on disk without a flush.
#   dataCoord.compaction.single.deltalog.maxnum=0, dataCoord.compaction.global.interval=10 s:
#   a segment with any delete log is rewritten without the deleted rows within seconds.
#   dataCoord.gc.interval=5 s, dataCoord.gc.dropTolerance=5 s: the files of the segments replaced
#   by a compaction (insert binlogs, index files) are removed seconds later.
#   rocksmq.retentionTimeInMinutes=1, rocksmq.timtickerInterval=5 s, rocksmq.rocksmqPageSize=4 KiB,
#   rocksmq.compactionInterval=10 s: consumed messages (an insert message holds the raw vectors)
#   are deleted a minute after they were consumed and purged from RocksDB's files at its next
#   compaction; rocksmq.compressionTypes all 0 keeps those files uncompressed, so a byte scan
#   sees what they hold.
set -euo pipefail
action=${1:-}
dir=${2:-}
if [ -z "$dir" ]; then
    echo "usage: $0 start|restart|stop DIR" >&2
    exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
venv=$root/.milvus-venv
milvus_version=2.3.5

# The leader of the server's process group, if it is still ours (running with DIR as its cwd).
server_pgid() {
    local pid
    pid=$(cat "$dir/milvus.pid" 2>/dev/null) || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$(cd "$dir" && pwd -P)" ] || return 1
    echo "$pid"
}

stop_server() {
    local pgid i
    pgid=$(server_pgid) || return 0
    kill -TERM -- "-$pgid" 2>/dev/null || true
    for i in $(seq 1 40); do
        kill -0 -- "-$pgid" 2>/dev/null || return 0
        sleep 0.5
    done
    echo "milvus did not stop within 20 s of SIGTERM; killing it" >&2
    kill -KILL -- "-$pgid" 2>/dev/null || true
    for i in $(seq 1 20); do
        kill -0 -- "-$pgid" 2>/dev/null || return 0
        sleep 0.25
    done
}

# Runs the server binary configured in DIR (by `start`) and waits until it is healthy.
run_server() {
    local proxy_port metrics_port bin_dir healthy i
    read -r proxy_port metrics_port bin_dir <"$dir/server.ports"
    mkdir -p "$dir/logs" "$dir/run"
    # A clean environment: Milvus reads every environment variable as a configuration key.
    (cd "$dir" && exec env -i PATH=/usr/bin:/bin HOME="$dir" \
        DEPLOY_MODE=STANDALONE METRICS_PORT="$metrics_port" MILVUS_RUN_DIR="$dir/run" \
        MILVUSCONF="$dir/configs" ETCD_CONFIG_PATH="$dir/configs/embedEtcd.yaml" \
        LD_LIBRARY_PATH="$bin_dir" \
        setsid "$bin_dir/milvus" run standalone >"$dir/logs/milvus-stdout.log" 2>&1 </dev/null) &
    echo $! >"$dir/milvus.pid"
    healthy=
    for i in $(seq 1 240); do
        if ! server_pgid >/dev/null; then
            break
        fi
        if "$venv/bin/python" -c "import urllib.request, sys; sys.exit(b'OK' not in urllib.request.urlopen('http://127.0.0.1:$metrics_port/healthz', timeout=2).read())" 2>/dev/null; then
            healthy=1
            break
        fi
        sleep 0.5
    done
    if [ -z "$healthy" ]; then
        echo "error: Milvus did not become healthy within 120 s; the end of its log:" >&2
        tail -n 30 "$dir/logs/milvus-stdout.log" >&2 || true
        stop_server
        exit 1
    fi
    echo "http://127.0.0.1:$proxy_port"
}

case "$action" in
start)
    if ! "$venv/bin/python" -c "import milvus, sys; sys.exit(milvus.__version__ != '$milvus_version')" 2>/dev/null; then
        echo "installing milvus==$milvus_version into $venv..." >&2
        py=$(command -v python3.11 || command -v python3)
        rm -rf "$venv"
        "$py" -m venv "$venv" >&2
        "$venv/bin/pip" install --quiet --disable-pip-version-check "milvus==$milvus_version" >&2
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd -P)
    # Writes the configuration; prints "PROXY_PORT METRICS_PORT BIN_DIR".
    info=$("$venv/bin/python" - "$dir" "$venv/milvus-home" <<'EOF'
import os
import socket
import sys

import milvus

data_dir, home = sys.argv[1], sys.argv[2]
milvus._initialize_data_files(home)  # unpacks the binaries once (checked by md5)

names = ["etcd_port", "etcd_peer_port", "metrics_port", "root_coord_port", "proxy_port",
         "proxy_internal_port", "query_coord_port", "query_node_port", "index_coord_port",
         "index_node_port", "data_coord_port", "data_node_port"]
socks = []
for _ in names:  # hold them all open so that the ports are distinct
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
ports = dict(zip(names, (s.getsockname()[1] for s in socks)))
for s in socks:
    s.close()

template_ports = {k: v for k, v in ports.items() if k not in ("etcd_peer_port", "metrics_port")}
config = milvus.MilvusServerConfig(data_dir=data_dir, **template_ports)
settings = {
    # advertise loopback (the servers still listen on all interfaces: Milvus 2.3 binds ":PORT")
    **{f"{c}.ip": "127.0.0.1" for c in
       ("rootCoord", "proxy", "queryCoord", "queryNode", "indexNode", "dataCoord", "dataNode")},
    "common.gracefulStopTimeout": 10,  # seconds; the default 1800 can hang a stop for minutes
    # time ticks every 50 ms instead of 200: a Strong read waits for the next tick (~50 ms)
    "proxy.timeTickInterval": 50,
    # message log (rocksmq): delete consumed messages after 1 min and purge them from disk
    "rocksmq.retentionTimeInMinutes": 1,
    "rocksmq.retentionSizeInMB": 8192,
    "rocksmq.rocksmqPageSize": 4096,  # retention drops whole pages only; small pages close fast
    "rocksmq.compactionInterval": 10,  # seconds between RocksDB compactions (purges deleted keys)
    "rocksmq.compressionTypes": "[0, 0, 0, 0, 0]",  # no zstd in any level: a byte scan sees all
    # garbage collection of segment files (binlogs, deltalogs, index files)
    "dataCoord.gc.interval": 5,
    "dataCoord.gc.dropTolerance": 5,
    "dataCoord.gc.missingTolerance": 60,
    "dataCoord.enableCompaction": "true",
    # a data node writes buffered deletes (and inserts) to files at least this often (seconds)
    "dataNode.segment.syncPeriod": 10,
    "dataCoord.compaction.enableAutoCompaction": "true",
    # search: data not yet indexed (growing segments, sealed ones before their HNSW is built)
    # is searched through an interim IVF index; probing all of its 128 lists makes that search
    # exact (rank-1 80-85% right after an import with the default 16)
    "queryNode.segcore.interimIndex.nprobe": 128,
}
for key, value in settings.items():
    config.set(key, value)
config.resolve()  # binds each port once more to check it, then writes configs/milvus.yaml

configs = os.path.join(data_dir, "configs")
# Keys that the wheel's template lacks (so --extra-config cannot set them; 2.3.5 reads no
# user.yaml): inserted into their sections of milvus.yaml, after an anchor line.
inserts = [
    ("  compactionInterval: ", "rocksmq", [
        "  timtickerInterval: 5 # seconds between retention checks (default 600)",
    ]),
    ("    indexBasedCompaction: ", "dataCoord.compaction", [
        "    global:",
        "      interval: 10 # seconds between automatic compaction checks (default 60)",
        "    single:",
        "      deltalog:",
        "        maxnum: 0 # compact a segment once it has any delete log (default 200)",
    ]),
]
path = os.path.join(configs, "milvus.yaml")
lines = open(path).read().splitlines()
for anchor, section, new in inserts:
    at = [i for i, line in enumerate(lines) if line.startswith(anchor)]
    if len(at) != 1:
        sys.exit(f"milvus.yaml: cannot place {section} settings (anchor {anchor.strip()!r})")
    lines[at[0] + 1 : at[0] + 1] = new
with open(path, "w") as f:
    f.write("\n".join(lines) + "\n")
# The embedded etcd listens on 2379/2380 unless told otherwise.
etcd_client = f"http://127.0.0.1:{ports['etcd_port']}"
etcd_peer = f"http://127.0.0.1:{ports['etcd_peer_port']}"
with open(os.path.join(configs, "embedEtcd.yaml"), "w") as f:
    f.write(f"""\
name: default
listen-client-urls: {etcd_client}
advertise-client-urls: {etcd_client}
listen-peer-urls: {etcd_peer}
initial-advertise-peer-urls: {etcd_peer}
initial-cluster: default={etcd_peer}
auto-compaction-mode: revision
auto-compaction-retention: "1000"
""")
print(ports["proxy_port"], ports["metrics_port"], os.path.join(home, "bin"))
EOF
    ) || {
        echo "error: could not write the Milvus configuration" >&2
        exit 1
    }
    echo "$info" >"$dir/server.ports"
    run_server
    ;;
restart)
    [ -f "$dir/server.ports" ] || { echo "error: no server was started in $dir" >&2; exit 1; }
    dir=$(cd "$dir" && pwd -P)
    stop_server
    run_server
    ;;
stop)
    stop_server
    rm -rf "$dir"
    ;;
*)
    echo "usage: $0 start|restart|stop DIR" >&2
    exit 2
    ;;
esac
