#!/usr/bin/env bash
# Runs CI as a new machine would, before a push: a fresh clone of HEAD in ../ci-try (beside the
# checkout, so that ../shared is found as in CI), `bash .ci/run` with HOME pointed at an empty
# folder and no pip, cargo or other cache reused (every crate and wheel is fetched again). The
# Rust toolchain itself is kept (RUSTUP_HOME), as a new machine has one. Prints the run's last
# lines; its whole output is in ../ci-try.log.
set -euo pipefail
cd "$(dirname "$0")/.."
real_home=$HOME
target=$(cd .. && pwd)/ci-try
fresh=$(mktemp -d /tmp/facedb-ci-home.XXXXXX)
mkdir -p "$fresh/home" "$fresh/cargo/bin"
# cargo and rustc through rustup's proxies, which find the toolchain by RUSTUP_HOME.
for tool in cargo rustc rustup rustfmt cargo-clippy clippy-driver; do
    if [ -e "$real_home/.cargo/bin/$tool" ]; then
        ln -s "$real_home/.cargo/bin/$tool" "$fresh/cargo/bin/$tool"
    fi
done
rm -rf "$target"
git clone -q . "$target"
status=0
(
    cd "$target"
    # The machine's environment (as CI has it), less the home directory and every cache in it;
    # the toolchains stay where the machine has them (rustup's, and pyenv's Python if any).
    env \
        HOME="$fresh/home" \
        RUSTUP_HOME="${RUSTUP_HOME:-$real_home/.rustup}" \
        PYENV_ROOT="${PYENV_ROOT:-$real_home/.pyenv}" \
        CARGO_HOME="$fresh/cargo" \
        PATH="$fresh/cargo/bin:$PATH" \
        XDG_CACHE_HOME="$fresh/cache" \
        PIP_NO_CACHE_DIR=1 \
        CI=true \
        bash .ci/run </dev/null
) >"$target.log" 2>&1 || status=$?
tail -15 "$target.log"
echo "rehearsal: exit $status (HOME was $fresh/home; output in $target.log)"
rm -rf "$fresh"
exit $status
