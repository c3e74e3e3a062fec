# Two commands for a fresh machine: `make demo` and `make test`. Each does its own set-up.
SHELL := /bin/bash
VENV  := .venv
BIN   := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTHON ?= python3

.PHONY: demo sysdeps-demo test test-fast lint typecheck pytest bench sysdeps sysdeps-browser test-browser clean proto npm test-arm64 smoke-armhf reference data-path readmes

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

# mosquitto (demo and tests), socat (RTU pty pairs), shellcheck (install script): apt-get when root.
# apt-get that waits for another apt or dpkg (unattended-upgrades on a fresh Pi) instead of failing
APT = DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -y -qq
APT_WAIT = for i in $$(seq 1 120); do $(APT) update >/dev/null 2>&1 && break; echo "apt is busy (another install?): waiting"; sleep 5; done

# What the tests use beside Python: a real broker, socat (ptys), shellcheck (deploy scripts).
sysdeps:
	@missing=""; for t in mosquitto socat shellcheck faketime; do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing:$$missing"; $(APT_WAIT); $(APT) install $$missing >/dev/null; \
	  else echo "note: missing$$missing (not root: the tests that need them skip or fall back)"; fi; \
	fi

# What the demo uses: only mosquitto (without it the demo runs an embedded broker).
sysdeps-demo:
	@if ! command -v mosquitto >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing: mosquitto"; $(APT_WAIT); $(APT) install mosquitto >/dev/null || echo "note: mosquitto not installed: the demo uses an embedded broker"; \
	  else echo "note: no mosquitto (not root): the demo falls back to an embedded broker"; fi; \
	fi

# Debian's chromium and chromium-driver (~100 MB): only for the panel's real-browser test, which the
# test target runs (it skips where they are missing and we are not root).
sysdeps-browser:
	@if ! command -v chromedriver >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing: chromium chromium-driver"; $(APT_WAIT); $(APT) install chromium chromium-driver >/dev/null; \
	  else echo "note: no chromedriver (not root): the panel's browser test will skip"; fi; \
	fi

# The panel in headless Chromium (tests/agent/test_panel_browser.py); PANEL_SCREENSHOTS=DIR saves the pages.
test-browser: $(STAMP) sysdeps sysdeps-browser
	$(BIN)/pytest tests/agent/test_panel_browser.py

# KEEP=1 keeps the agent's state in .demo-state/ (run it twice: calibrations, counters, reports persist).
demo: $(STAMP) sysdeps-demo
	$(BIN)/edge-agent demo $(if $(SECONDS),--seconds $(SECONDS)) $(if $(KEEP),--keep .demo-state)

lint: $(STAMP)
	$(BIN)/ruff check agent drivers plugins tests $(wildcard bench)

# mypy reads the installed layout (edge_agent.agent ...) through the checkout's edge_agent/ links.
typecheck: $(STAMP)
	$(BIN)/mypy

# docs/reference/ from the built-in specs (options and declared values; a test fails when stale).
reference: $(STAMP)
	$(BIN)/python -m edge_agent.agent.devtools.reference_docs

# The sample config of each driver's and plugin's README, copied from the example snippet it names.
readmes: $(STAMP)
	$(BIN)/python -m edge_agent.agent.devtools.readme_samples

# docs/data-path.png, the data path drawn from the code (a test fails when a function it names is gone).
data-path: $(STAMP)
	$(BIN)/python -m edge_agent.agent.devtools.data_path

# The Sparkplug B schema compiled for the protobuf runtime (the result is committed; a test checks it).
proto: $(STAMP)
	$(BIN)/python -m grpc_tools.protoc -Iagent/sparkplug --python_out=agent/sparkplug --pyi_out=agent/sparkplug agent/sparkplug/sparkplug_b.proto

# Eclipse Tahu's JavaScript Sparkplug codec: the independent decoder of the Sparkplug tests
# (installed once into build/npm; the tests need no network afterwards, and skip without node).
NPM_TAHU := build/npm/node_modules/sparkplug-payload/package.json
$(NPM_TAHU):
	@if command -v npm >/dev/null; then npm install --silent --no-audit --no-fund --prefix build/npm sparkplug-payload@1.0.3 >/dev/null || echo "note: npm install of sparkplug-payload failed: the Tahu cross-check tests will skip"; \
	else echo "note: no npm: the Tahu cross-check tests will skip"; fi
npm: $(NPM_TAHU)

# Two workers (pytest-xdist): most slow tests wait on brokers and processes, so 2 cores overlap them.
pytest: $(STAMP) sysdeps sysdeps-browser npm
	$(BIN)/pytest -n 2 --dist worksteal

test: $(STAMP) sysdeps lint typecheck pytest

# The suite less the tests marked `slow` (brokers, subprocesses, servers, ptys): seconds, no set-up beyond the venv.
test-fast: $(STAMP)
	$(BIN)/pytest -m "not slow" -n 2 --dist worksteal

bench: $(STAMP) sysdeps
	$(BIN)/python -m bench.plant $(if $(SECONDS),--seconds $(SECONDS)) $(if $(COMPARE),--compare $(COMPARE))

# Raspberry Pi OS under QEMU emulation (not part of `make test`; root, qemu-user-static, binfmt-support,
# debootstrap; the roots are cached in /var/cache/edge-agent). See docs/deployment.md, "Support matrix".
# Niceness 10 on a shared machine, not added to the caller's: `nice -n 10 make test-arm64` (as CI
# runs it) stays at 10 instead of 19, where the emulated suite got almost no CPU at load 10 (a pure
# Python loop 87x slower than on the idle VM, against 21-28x at niceness 0).
NICE ?= $(shell n=$$(nice); [ "$$n" -ge 10 ] || echo "nice -n $$((10 - n))")
test-arm64:
	$(NICE) tests/emulated/test-arm64.sh

smoke-armhf:
	$(NICE) tests/emulated/smoke-armhf.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
