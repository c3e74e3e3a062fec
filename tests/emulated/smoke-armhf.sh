#!/usr/bin/env bash
# `make smoke-armhf`: edge-agent on an emulated Raspberry Pi OS 32-bit (bookworm armhf). PyPI has
# almost no cp311 armv7l wheels, so this installs the way a 32-bit Pi with internet would: Debian's
# python3-numpy (in the cached root) in a --system-site-packages venv, everything else from PyPI,
# compiled where there is no wheel (pip's cache in /var/cache/edge-agent/pip-armhf keeps the builds).
# Then: every module and bus library imports, the spidev ABI check, the vibration and temperature
# tests, and check-config of the reference plant. Not part of `make test`; needs root.
# Logs and a summary: build/armhf/. Mounts are undone on any exit.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="$REPO/build/armhf"
LABEL="smoke-armhf"
# shellcheck source=deploy/emulated-root.sh
source "$REPO/deploy/emulated-root.sh"
# shellcheck source=tests/emulated/common.sh
source "$REPO/tests/emulated/common.sh"

VENV=/opt/edge-agent-smoke
TESTS=(tests/plugins/test_vibration_*.py tests/plugins/test_temperature*.py tests/plugins/test_its90.py
    tests/drivers/test_adxl345.py tests/drivers/test_max3185x.py tests/drivers/test_vibration_model.py)

main() {
    start_summary
    er_check armhf >/dev/null

    step "edge-agent wheel (native, pure Python)"
    export_tree "$OUT/src"
    python3 -m pip wheel -q --no-deps --disable-pip-version-check -w "$OUT/wheel" "$OUT/src" >"$OUT/wheel.log" 2>&1 ||
        { tail -n 20 "$OUT/wheel.log"; return 1; }

    step "session (overlay on the cached armhf root)"
    er_session_start armhf 2>>"$OUT/session.log"
    mkdir -p "$ER_CACHE/pip-armhf" "$ER_ROOT/root/.cache/pip"
    er_mount --bind "$ER_CACHE/pip-armhf" "$ER_ROOT/root/.cache/pip"
    echo "root: uname -m $(er_run uname -m), $(er_run dpkg --print-architecture), $(er_run python3 --version)," \
        "Debian numpy $(er_run python3 -c 'import numpy; print(numpy.__version__)')" | tee -a "$OUT/summary.txt"

    step "install: Debian numpy + PyPI (compiling what has no armv7l wheel)"
    cp "$OUT"/wheel/edge_agent-*.whl "$ER_ROOT/root/"
    local whl
    whl="$(basename "$OUT"/wheel/edge_agent-*.whl)"
    er_run python3 -m venv --system-site-packages "$VENV"
    # PYPI=1: lgpio's sdist compiles its bundled C library (Debian has no liblgpio to link).
    # shellcheck disable=SC2034 # read by er_run
    ER_ENV=(PYPI=1)
    er_run "$VENV/bin/python" -m pip install -v --prefer-binary "/root/${whl}[pi]" pytest pytest-timeout hypothesis \
        >"$OUT/install.log" 2>&1 || { grep -E 'error|Error' "$OUT/install.log" | tail -n 30; return 1; }
    # What pip compiled (no wheel for armv7l on the index) and what it took as a wheel.
    grep -oE 'Building wheel for [^ ]+' "$OUT/install.log" | sort -u | sed 's/^/  compiled: /' | tee -a "$OUT/summary.txt" || true
    grep -oE 'Created wheel for [^:]+: filename=[^ ]+' "$OUT/install.log" | sed 's/^/  /' >>"$OUT/summary.txt" || true
    grep -oE 'Using cached [^ ]+linux_armv7l.whl' "$OUT/install.log" | sed 's/^/  compiled by an earlier run, from pip'"'"'s cache: /' |
        tee -a "$OUT/summary.txt" || true
    echo "  numpy in the venv: $(er_run "$VENV/bin/python" -c 'import numpy; print(numpy.__version__, numpy.__file__)')" |
        tee -a "$OUT/summary.txt"

    step "imports: every plugin, driver and bus library"
    cp "$REPO/tests/emulated/imports.py" "$ER_ROOT/root/"
    er_run "$VENV/bin/python" /root/imports.py 2>&1 | tee "$OUT/imports.txt" | tee -a "$OUT/summary.txt"
    [[ "${PIPESTATUS[0]}" == 0 ]] || return 1

    step "spidev ABI: the target's C headers against edge-agent's Python"
    abi_check "$VENV/bin/python"

    step "vibration and temperature tests"
    mkdir -p "$ER_ROOT/src"
    (cd "$REPO" && git ls-files -z --cached --others --exclude-standard -- tests examples pyproject.toml |
        xargs -0 tar --ignore-failed-read -cf - 2>/dev/null) | tar -C "$ER_ROOT/src" -xf -
    local rc=0
    er_run /bin/sh -c "cd /src && exec $VENV/bin/python -m pytest -p no:cacheprovider --junitxml=/src/junit.xml \
        --durations=10 ${TESTS[*]} ${ARMHF_PYTEST_ARGS:-}" >"$OUT/pytest.log" 2>&1 || rc=$?
    cp "$ER_ROOT/src/junit.xml" "$OUT/junit.xml" 2>/dev/null || true
    echo "pytest (exit $rc): $(tail -n 1 "$OUT/pytest.log")" | tee -a "$OUT/summary.txt"
    grep -E '^(FAILED|ERROR) ' "$OUT/pytest.log" | tee -a "$OUT/summary.txt" || true

    step "check-config of the reference plant"
    er_run "$VENV/bin/edge-agent" check-config /src/examples/reference-plant.toml | tee -a "$OUT/summary.txt"
    [[ "${PIPESTATUS[0]}" == 0 ]] || return 1
    ((rc == 0)) || { echo "tests failed on armhf (see $OUT/pytest.log)"; return 1; }
}

main "$@"
