# The two commands of the README: `make demo` and `make test`. Both create .venv and install the
# project from this pyproject.toml first, so they work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install browser demo test test-fast bench sandbox clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The project's own modules byte-compiled (pip does this for site-packages, not for an editable install): with
# PYTHONDONTWRITEBYTECODE set, every process (each CLI run, each worker's flow run) would compile ~100 of them
# again, ~0.3 s of CPU each time. Up-to-date files are skipped; a changed source is compiled again here.
install: $(STAMP)
	@$(PY) -m compileall -q -j 0 taskbuilder tasks flows deployments sandbox > /dev/null

# Debian's chromium renders Prefect's launch form in the slow form test (it skips without it). Not a Python
# package: installed with apt-get when missing and allowed (root), else the reason is printed and the test skips.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1; } || \
	  echo "chromium is not installed (apt-get install chromium, as root): the launch-form test will skip"

demo: install
	$(VENV)/bin/taskbuilder demo

# Four test processes on any machine: most of the suite waits on the sandbox's statuses and on Prefect
# (about 17 CPU-minutes in a 59-minute serial run), so four overlap well even on two cores. TEST_WORKERS=0 runs
# serially. A module's tests that share a started stack stay on one worker (tests/conftest.py).
TEST_WORKERS ?= 4
PYTEST_PARALLEL := $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadgroup)

test: install browser
	$(PY) -m pytest $(PYTEST_PARALLEL)

test-fast: install
	$(PY) -m pytest $(PYTEST_PARALLEL) -m "not slow"

bench: install
	$(PY) benchmarks/run_all.py

sandbox: install
	$(VENV)/bin/taskbuilder sandbox

clean:
	rm -rf $(VENV) out .pytest_cache
	find taskbuilder tasks flows deployments sandbox benchmarks tests -name __pycache__ -type d -prune -exec rm -rf {} +
