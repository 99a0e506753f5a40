# facedb: `make demo` and `make test` do all set-up on a fresh machine (Python 3.11 + Rust).

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# Tools in the venv come first: `python3` there is what the Rust tests ask for the wheels.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
NATIVE_SOURCES := $(wildcard rust/*.rs) Cargo.toml Cargo.lock pyproject.toml

.PHONY: venv build demo test test-python test-rust lint format bench clean

venv: $(VENV)/.installed

# The venv holds maturin; `maturin develop` then installs facedb's dependencies with every
# extra (service, postgres, milvus, video) and the dev one (test and lint tools) from
# pyproject.toml, the one list of them.
$(VENV)/.installed:
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (set PYTHON=...)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "maturin>=1.7,<2"
	touch $@

build: $(VENV)/.built

$(VENV)/.built: $(VENV)/.installed $(NATIVE_SOURCES)
	$(VENV)/bin/maturin develop --release --quiet --extras all,dev
	touch $@

demo: build
	$(PY) -m facedb.demo

test: build
	bash scripts/run-tests.sh

lint: build
	$(VENV)/bin/ruff format --check facedb tests benchmarks
	$(VENV)/bin/ruff check facedb tests benchmarks
	$(VENV)/bin/mypy facedb
	$(PY) -m mypy.stubtest facedb._native
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy --all-targets --features python -- -D warnings

format: venv
	$(VENV)/bin/ruff format facedb tests benchmarks
	$(VENV)/bin/ruff check --fix facedb tests benchmarks
	cargo fmt

bench: build
	$(PY) benchmarks/pipeline.py

clean:
	rm -rf $(VENV) target
