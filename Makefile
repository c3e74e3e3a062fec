# Two commands for a fresh machine: `make demo` and `make test`. Each does its own set-up.
SHELL := /bin/bash
VENV  := .venv
BIN   := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTHON ?= python3

.PHONY: demo test lint typecheck pytest bench sysdeps clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

# mosquitto (demo and tests), socat (RTU pty pairs), shellcheck (install script): apt-get when root.
sysdeps:
	@missing=""; for t in mosquitto socat shellcheck; do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "note: missing$$missing (not root: the demo falls back to an embedded broker)"; fi; \
	fi

demo: $(STAMP) sysdeps
	$(BIN)/edge-agent demo $(if $(SECONDS),--seconds $(SECONDS))

lint: $(STAMP)
	$(BIN)/ruff check agent drivers plugins tests $(wildcard bench)

# mypy reads the installed layout (edge_agent.agent ...) through a tree of links to the three folders.
typecheck: $(STAMP)
	@mkdir -p build/typecheck/edge_agent
	@for d in agent drivers plugins; do ln -sfn "$(CURDIR)/$$d" build/typecheck/edge_agent/$$d; done
	$(BIN)/mypy

pytest: $(STAMP) sysdeps
	$(BIN)/pytest

test: $(STAMP) sysdeps lint typecheck pytest

bench: $(STAMP) sysdeps
	$(BIN)/python bench/plant.py $(if $(SECONDS),--seconds $(SECONDS)) $(if $(COMPARE),--compare $(COMPARE))

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
