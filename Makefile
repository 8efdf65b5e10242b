# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# numba compiles umap-learn's code once per process unless it can cache it on disk
export NUMBA_CACHE_DIR ?= $(CURDIR)/.cache/numba
# the tests find MNIST here; the package itself never names this path
export LAYERLAPSE_DATA ?= $(abspath $(CURDIR)/../shared/data)

.PHONY: demo test install install-dev clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.installed: $(PY) pyproject.toml constraints.txt
	$(PY) -m pip install -q -c constraints.txt -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: install
	$(VENV)/bin/layerlapse demo

test: install-dev
	$(PY) -m pytest

clean:
	rm -rf $(VENV) .cache
