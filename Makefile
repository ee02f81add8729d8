# Two commands on a fresh machine with Python 3.11 and make:
#   make demo   # creates .venv if missing, installs kdl, runs the main job
#   make test   # same set-up, then the whole test suite
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.kdl-installed

.PHONY: demo test test-fast lint format bench clean

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "make: $(PYTHON) not found; run 'make PYTHON=python3 ...'"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet -e ".[test,rl-box2d]"
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py

test: lint
	$(PY) -m pytest -n 2 --dist loadgroup --durations=60

test-fast: $(STAMP)
	$(PY) -m pytest -n 2 -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff format --check kdl tests examples benchmarks
	$(VENV)/bin/ruff check kdl tests examples benchmarks

format: $(STAMP)
	$(VENV)/bin/ruff format kdl tests examples benchmarks

BENCH ?=
bench: $(STAMP)  # every benchmark (hours on 2 cores), or BENCH="imports edge"; never fails
	-$(PY) benchmarks/run.py $(BENCH)

clean:
	rm -rf $(VENV) build *.egg-info
