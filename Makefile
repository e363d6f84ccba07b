# One command to set up and run the server, one to set up and run the tests.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: setup run test test-all lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt -e '.[dev,openvino,queue]'
	touch $@

run: setup
	$(VENV)/bin/chronicon serve

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks

bench: setup
	$(PY) benchmarks/bench_sampling.py
	$(PY) benchmarks/bench_agent.py
	$(PY) benchmarks/bench_inference.py
	$(PY) benchmarks/bench_server.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
