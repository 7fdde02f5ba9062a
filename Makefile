# The two commands of the README: `make demo` and `make test`. Both create .venv and install the
# project from this pyproject.toml first, so they work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast bench sandbox clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/taskbuilder demo
	@$(VENV)/bin/taskbuilder server status >/dev/null 2>&1 && echo "A local Prefect server keeps running for later runs; '$(VENV)/bin/taskbuilder server stop' stops it." || true

test: install
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest -m "not slow"

bench: install
	$(PY) benchmarks/run_all.py

sandbox: install
	$(VENV)/bin/taskbuilder sandbox

clean:
	rm -rf $(VENV) out .pytest_cache
