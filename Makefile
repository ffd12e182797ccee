# Entry points, each sets up .venv on first use:
#   make demo   build specs/convnext.arch into build/convnext_tiny.py and print its summary
#   make test   run the whole test suite (timm and fvcore are the oracles; Graphviz and a headless
#               Chromium, for the viz tests, are installed with apt when missing)
#   make fuzz   nightly fuzzing: FUZZ_CASES random specs from the grammar and as many mutations of
#               the real specs (the normal suite runs a few hundred); prints the counts
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

FUZZ_CASES ?= 5000

.PHONY: demo test lint bench clean system-deps fuzz

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/archlang build specs/convnext.arch

system-deps:
	scripts/system-deps.sh

test: $(VENV)/.installed system-deps
	$(PY) -m pytest -n 2 -p no:cacheprovider

fuzz: $(VENV)/.installed
	ARCHLANG_FUZZ=$(FUZZ_CASES) $(PY) -m pytest tests/test_fuzz.py -p no:cacheprovider -p no:xdist -q -s

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

bench: $(VENV)/.installed
	$(PY) benchmarks/bench_vs_timm.py

clean:
	rm -rf build .cache
