# analogsim — the two commands of README.md, and what they need.
#   make demo   create .venv, install analogsim, run the demo
#   make test   install with every extra (aihwkit included) and run ruff + the whole test suite
# Installs go through constraints.txt (the torch pin). Each install step leaves a stamp in .venv,
# so a second run only redoes what changed.

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check
CONSTRAINTS := -c $(CURDIR)/constraints.txt
AIHWKIT_BUILD_TOOLS := "setuptools>=77" wheel "scikit-build>=0.18.1" "pybind11>=3.0.1" ninja "cmake>=4.2.1" mypy
export MPLBACKEND := Agg

.PHONY: demo test lint bench reproduce aihwkit clean

demo: $(VENV)/.installed-core
	$(BIN)/analogsim demo

test: lint $(VENV)/.installed-aihwkit
	MPLCONFIGDIR=$${MPLCONFIGDIR:-$(CURDIR)/$(VENV)/mplconfig} $(BIN)/python -m pytest -n 2

# ruff check only: the code is laid out by hand (line length 100), not by `ruff format`
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check analogsim tests benchmarks

# Run every benchmark (each writes benchmarks/results/<bench>.json) and rewrite
# docs/performance.md from those results and benchmarks/templates/performance.md.in.
bench: $(VENV)/.installed-dev $(VENV)/.installed-aihwkit
	for script in benchmarks/bench_*.py; do $(BIN)/python $$script || exit 1; done
	$(BIN)/python benchmarks/performance_page.py

# Re-run every reproduction spec (results/<name>.h5) and the demo, rewrite their summaries
# (benchmarks/reproduce/summaries/), and docs/reproductions.md and README.md from the summaries
# and their templates (benchmarks/reproduce/templates/). One thread per run, as the durations on
# the page were measured. A finished run is resumed, not repeated.
reproduce: $(VENV)/.installed-dev
	for spec in benchmarks/reproduce/*.toml; do \
	    name=$$(basename $$spec .toml); \
	    OMP_NUM_THREADS=1 $(BIN)/analogsim run $$spec -o results/$$name.h5 || exit 1; \
	    $(BIN)/python benchmarks/reproduce/summarize.py results/$$name.h5 || exit 1; \
	done
	OMP_NUM_THREADS=1 $(BIN)/analogsim demo --results results/demo.h5 --quiet
	$(BIN)/python benchmarks/reproduce/summarize.py results/demo.h5
	$(BIN)/python benchmarks/reproduce/page.py

aihwkit: $(VENV)/.installed-aihwkit

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-core: $(VENV)/bin/python pyproject.toml constraints.txt
	$(PIP) install $(CONSTRAINTS) torch==2.13.0
	$(PIP) install $(CONSTRAINTS) -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed-core
	$(PIP) install $(CONSTRAINTS) -e ".[dev,data,cluster,aihwkit,transformers]"
	touch $@

# aihwkit 1.2.0 is the only release that works with torch 2.13, and only built from its sdist
# against the installed torch. --no-deps keeps its torchvision requirement (and the CUDA torch it
# drags in) out; the [aihwkit] extra installs its runtime dependencies. Its build runs mypy's
# stubgen from PATH. pip caches the built wheel, so a rebuild on the same machine takes seconds.
$(VENV)/.installed-aihwkit: $(VENV)/.installed-core
	@if ! dpkg -s libopenblas-dev >/dev/null 2>&1; then \
	    echo "installing libopenblas-dev (needed to build aihwkit)"; \
	    apt-get update -qq && apt-get install -y -qq libopenblas-dev; \
	fi
	$(PIP) install $(CONSTRAINTS) $(AIHWKIT_BUILD_TOOLS)
	PATH=$(BIN):$$PATH $(PIP) install $(CONSTRAINTS) --no-build-isolation --no-deps aihwkit==1.2.0
	$(PIP) install $(CONSTRAINTS) -e ".[aihwkit]"
	touch $@

clean:
	rm -rf $(VENV) build *.egg-info results report .pytest_cache
