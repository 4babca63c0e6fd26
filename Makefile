# The two commands of the README:
#   make reports   installs what is missing, then reruns every notebook (default profile, CPU, no download,
#                  JOBS=2 notebooks side by side, the cores shared between them)
#   make test      installs what is missing (with test oracles), then runs unit tests + nbval on notebooks
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PROFILE ?= default
JOBS   ?= 2
DEVICE ?=

.PHONY: install install-test reports test test-fast bless bench clean-cache lab

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# the stamp is remade whenever pyproject.toml changes, so a new dependency is installed
$(VENV)/.stamp-base: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.stamp-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(VENV)/.stamp-base

$(VENV)/.stamp-lab: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[lab]'
	touch $@ $(VENV)/.stamp-base

install: $(VENV)/.stamp-base
install-test: $(VENV)/.stamp-test

reports: install
	$(BIN)/python -m xaikit.run --profile $(PROFILE) --jobs $(JOBS) $(if $(DEVICE),--device $(DEVICE),)

test: install-test
	XAIKIT_QUIET=1 $(BIN)/python -m pytest -n $(JOBS) --dist loadscope \
	  --nbval-lax --nbval-current-env --nbval-sanitize-with nbval_sanitize.cfg -p no:cacheprovider

test-fast: install-test
	XAIKIT_QUIET=1 $(BIN)/python -m pytest -x -q tests -m "not slow"

# open the notebooks in JupyterLab (installed on first use); a notebook opened this way runs at the
# profile of its parameters cell (ci: seconds); `make reports` runs them at the default profile
lab: $(VENV)/.stamp-lab
	$(BIN)/jupyter lab notebooks/

# after changing a notebook: rerun it at ci and store its claims output (what nbval compares)
bless: install
	$(BIN)/python -m xaikit.run --profile ci --bless $(if $(NB),--notebooks $(NB),)

bench: install-test
	$(BIN)/python benchmarks/forward.py
	$(BIN)/python benchmarks/attributors.py
	$(BIN)/python benchmarks/metrics.py

clean-cache:
	rm -rf .cache
