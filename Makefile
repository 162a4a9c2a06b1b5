# The README's two commands: `make demo` (main job on the bundled defaults) and `make test`.
# Both bootstrap .venv on a fresh machine. `make bench` runs the benchmarks.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO_OUT ?= demo_out

.PHONY: demo test test-fast lint bench install clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/vidplug demo --out $(DEMO_OUT) --overwrite

# Tests use tiny tensors: one thread each is faster than two fighting over cores (and robust on a loaded host).
test: $(STAMP)
	$(BIN)/ruff check vidplug tests pipelines benchmarks
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(BIN)/python -m pytest -q tests

# the same without the tests marked slow (subprocess, torchrun and end-to-end runs): for quick iterations
test-fast: $(STAMP)
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(BIN)/python -m pytest -q -m "not slow" tests

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python -m benchmarks.bench_solver --out benchmarks/results

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache .ruff_cache
