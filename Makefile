# facedb: `make demo` and `make test` do all set-up on a fresh machine (Python 3.11 + Rust).

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# Tools in the venv come first: `python3` there is what the Rust tests ask for the wheels.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
NATIVE_SOURCES := $(wildcard rust/*.rs) Cargo.toml Cargo.lock pyproject.toml

.PHONY: venv build demo test test-python test-rust lint format bench screenshots docs lock clean

venv: $(VENV)/.installed

# The venv gets the exact versions of requirements-test.lock (maturin, facedb's dependencies
# with every extra and the dev tools: the ranges of pyproject.toml resolved once, by
# `make lock`), so that every machine builds and tests with the same set; `maturin develop`
# then finds them all installed and is held to them by the same file as pip constraints.
LOCK := requirements-test.lock
$(VENV)/.installed: $(LOCK)
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (set PYTHON=...)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet "$$(grep '^pip==' $(LOCK))"
	$(PIP) install --quiet --requirement $(LOCK)
	touch $@

build: $(VENV)/.built

$(VENV)/.built: $(VENV)/.installed $(NATIVE_SOURCES)
	PIP_CONSTRAINT=$(CURDIR)/$(LOCK) $(VENV)/bin/maturin develop --release --quiet --extras all,dev
	touch $@

# `make demo` needs the core alone (numpy, onnxruntime, the models' wheel, SQLAlchemy,
# alembic, faiss, Pillow) and maturin, at the lock's versions: no extras, no test or lint
# tools. Where `make test` has already installed everything, the demo uses that.
$(VENV)/.core: $(LOCK) pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (set PYTHON=...)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet "$$(grep '^pip==' $(LOCK))"
	$(PYTHON) scripts/core-requirements.py > $(VENV)/core-requirements.txt
	$(PIP) install --quiet --constraint $(LOCK) --requirement $(VENV)/core-requirements.txt "$$(grep '^maturin==' $(LOCK))"
	touch $@

$(VENV)/.demo-built: $(VENV)/.core $(NATIVE_SOURCES)
	PIP_CONSTRAINT=$(CURDIR)/$(LOCK) $(VENV)/bin/maturin develop --release --quiet
	touch $@

demo: $(if $(wildcard $(VENV)/.installed),build,$(VENV)/.demo-built)
	$(PY) -m facedb.demo

test: build
	bash scripts/run-tests.sh

lint: build
	$(VENV)/bin/ruff format --check facedb tests benchmarks
	$(VENV)/bin/ruff check facedb tests benchmarks
	$(VENV)/bin/mypy facedb
	$(VENV)/bin/lint-imports
	$(PY) -m mypy.stubtest --mypy-config-file pyproject.toml facedb._native
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy --all-targets --features python,openvino -- -D warnings

format: venv
	$(VENV)/bin/ruff format facedb tests benchmarks
	$(VENV)/bin/ruff check --fix facedb tests benchmarks
	cargo fmt

bench: build
	$(PY) benchmarks/pipeline.py

# The docs' screenshots of the web page (assets/web-*.png), by the browser test; `make test`
# writes its screenshots to a temporary folder and leaves the working tree as it was.
screenshots: build
	scripts/browser.sh
	FACEDB_SCREENSHOTS=$(CURDIR)/assets $(PY) -m pytest -q tests/test_web.py -k browser

# The documentation site (docs/, mkdocs.yml; its front page is README.md) into site/.
docs: $(VENV)/.installed
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

# Resolves the test environment afresh (newest versions in pyproject.toml's ranges) into
# requirements-test.lock; commit the file with what it changes.
lock:
	PYTHON=$(PYTHON) bash scripts/lock.sh

clean:
	rm -rf $(VENV) target
