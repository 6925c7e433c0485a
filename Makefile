# Quick start: `make book` (runs what is missing at PROFILE, then builds _build/html) and
# `make test`. Both create the virtual environment .venv in the checkout on first use.
PYTHON ?= python3
VENV ?= .venv
PROFILE ?= cpu
JOBS ?= 2
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: book runs html test status sync clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

book: runs
	$(MAKE) html PROFILE=$(PROFILE)

runs: $(STAMP)
	$(BIN)/revisit batch --profile $(PROFILE) --jobs $(JOBS)

html: $(STAMP)
	REVISIT_PROFILE=$(PROFILE) $(BIN)/jupyter-book build . --path-output _build/$(PROFILE)
	@echo "book: _build/$(PROFILE)/_build/html/index.html"

test: $(STAMP)
	$(BIN)/python -m pytest -q

status: $(STAMP)
	$(BIN)/revisit status --profile $(PROFILE)

sync: $(STAMP)
	$(BIN)/jupytext --sync notebooks/*.py

clean:
	rm -rf _build
