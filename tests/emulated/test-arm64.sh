#!/usr/bin/env bash
# `make test-arm64`: edge-agent on an emulated Raspberry Pi OS 64-bit (bookworm arm64), installed the
# way a Pi is installed, then tested there. Not part of `make test` (about 45 min at load 4, needs root).
#
#  1. deploy/build-wheelhouse.sh --arch aarch64 here: the offline bundle a technician carries, and a
#     second wheelhouse with the test tools (pytest, hypothesis, scipy, ...);
#  2. a throw-away overlay session on the cached arm64 root (deploy/emulated-root.sh);
#  3. the bundle unpacked in it and its install.sh run with --wheelhouse (pip --no-index) in a
#     network namespace with no network at all, so any download attempt fails;
#  4. the test suite under emulation, against the installed release (tests/deploy run natively in
#     `make test`; ARM64_DEPLOY_TESTS=1 runs them here too);
#  5. the reference plant with simulated hardware for 60 s (ARM64_PLANT_S), read back with
#     `edge-agent tail` and checked by tests/emulated/check_tail.py.
# ARM64_SUITE=0 skips 4 (install and plant only, about 10 min); ARM64_WORKERS=N sets its pytest-xdist
# workers (2, as `make test`: 1,453 tests in 28 min at load 4.4); ARM64_PYTEST_ARGS adds pytest
# arguments (test ids run only those); ARM64_PLANT_NICE=N runs 5 at niceness N (default 0, see plant()).
# Logs and a summary: build/arm64/. Mounts are undone on any exit.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="$REPO/build/arm64"
PLANT_S="${ARM64_PLANT_S:-60}"
LABEL="test-arm64"
# shellcheck source=deploy/emulated-root.sh
source "$REPO/deploy/emulated-root.sh"
# shellcheck source=tests/emulated/common.sh
source "$REPO/tests/emulated/common.sh"

main() {
    start_summary
    er_check arm64 >/dev/null

    step "wheelhouse (build-wheelhouse.sh --arch aarch64)"
    export_tree "$OUT/src"
    "$REPO/deploy/build-wheelhouse.sh" --arch aarch64 --source "$OUT/src" --out "$OUT/dist" >"$OUT/wheelhouse.log" 2>&1 ||
        { tail -n 30 "$OUT/wheelhouse.log"; return 1; }
    grep -E '^ +[^ ]+: |^==> manifest' "$OUT/wheelhouse.log" || true
    local bundle
    bundle="$(find "$OUT/dist" -maxdepth 1 -name 'edge-agent-*-aarch64.tar.gz' -printf '%f\n' | head -n 1)"
    [[ -n "$bundle" ]] || { echo "no bundle in $OUT/dist"; return 1; }
    if [[ "${ARM64_SUITE:-1}" != 0 ]]; then
        "$REPO/deploy/build-wheelhouse.sh" --arch aarch64 --source "$OUT/src" --extras pi,dev --out "$OUT/dist-dev" \
            >"$OUT/wheelhouse-dev.log" 2>&1 || { tail -n 30 "$OUT/wheelhouse-dev.log"; return 1; }
    fi

    step "session (overlay on the cached arm64 root)"
    er_session_start arm64 2>>"$OUT/session.log"
    echo "uname -m in the root: $(er_run uname -m); $(er_run python3 --version)" | tee -a "$OUT/summary.txt"

    step "install.sh --wheelhouse --no-start, offline (in a network namespace without network)"
    tar -C "$ER_ROOT/root" -xzf "$OUT/dist/$bundle"
    local name="${bundle%.tar.gz}"
    # SYSTEMD_OFFLINE=1: no systemd runs in a chroot; systemctl then enables the unit offline (as
    # when preparing an SD-card image) instead of failing on daemon-reload.
    if ! unshare --net -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME=/root SYSTEMD_OFFLINE=1 \
        chroot "$ER_ROOT" "/root/$name/install.sh" --wheelhouse "/root/$name/wheelhouse" --no-start \
        >"$OUT/install.log" 2>&1; then
        tail -n 30 "$OUT/install.log"
        return 1
    fi
    echo "installed: $(er_run /opt/edge-agent/venv/bin/edge-agent --version)" | tee -a "$OUT/summary.txt"
    grep -E 'skipped|note|warning' "$OUT/install.log" | head -n 20 || true

    step "spidev ABI: the target's C headers against the installed Python code"
    abi_check /opt/edge-agent/venv/bin/python

    local rc=0
    if [[ "${ARM64_SUITE:-1}" == 0 ]]; then
        echo "test suite skipped (ARM64_SUITE=0)" | tee -a "$OUT/summary.txt"
    else
        suite || rc=$?
    fi
    plant || return 1
    end_step # the plant step passed: the suite's failure below is not its
    ((rc == 0)) || { echo "the test suite failed under emulation (see $OUT/pytest.log)" | tee -a "$OUT/summary.txt"; return 1; }
}

# The test suite under emulation, against the installed release; failed tests rerun once alone.
suite() {
    step "test tools into a venv layered on the installed release"
    # The suite runs against the installed release: its site-packages is on the test venv's path.
    local sp=/opt/edge-agent/venv/lib/python3.11/site-packages
    er_run python3 -m venv /opt/edge-agent-tests
    echo "$sp" >"$ER_ROOT/opt/edge-agent-tests/lib/python3.11/site-packages/edge-agent-release.pth"
    mkdir -p "$ER_ROOT/root/dev-wheelhouse"
    cp "$OUT"/dist-dev/edge-agent-*/wheelhouse/*.whl "$ER_ROOT/root/dev-wheelhouse/"
    er_run /opt/edge-agent-tests/bin/python -m pip install -q --no-index --find-links /root/dev-wheelhouse \
        'edge-agent[pi,dev]' >"$OUT/test-venv.log" 2>&1 || { tail -n 30 "$OUT/test-venv.log"; return 1; }
    er_run /opt/edge-agent-tests/bin/python -c \
        'import edge_agent.agent, sys; p = edge_agent.agent.__file__; print("edge_agent from", p); sys.exit("/opt/edge-agent/releases/" not in __import__("os").path.realpath(p))' |
        tee -a "$OUT/summary.txt"

    step "test suite under emulation"
    mkdir -p "$ER_ROOT/src"
    # The working tree's files: tests and examples. Its agent/ drivers/ plugins/ are not importable
    # as edge_agent (only the installed package is), so the release is what runs.
    export_tree "$ER_ROOT/src"
    local ignore=(--ignore=tests/deploy)
    [[ "${ARM64_DEPLOY_TESTS:-0}" == 0 ]] || ignore=()
    local rc=0
    # The installed release's bin/ on PATH, as on a Pi (tests that run the `edge-agent` command).
    # shellcheck disable=SC2034 # read by er_run
    # Waits scale by the measured speed factor (tests/support.py), capped at 8 natively; emulated
    # Python is 9-10x slower than native here before any load, so the cap is raised for the suite.
    ER_ENV=(PATH=/opt/edge-agent-tests/bin:/opt/edge-agent/venv/bin:/usr/sbin:/usr/bin:/sbin:/bin
        EDGE_AGENT_TEST_TIME_CAP="${EDGE_AGENT_TEST_TIME_CAP:-40}" EDGE_AGENT_TEST_RELEASE=1)
    er_run /bin/sh -c "cd /src && exec /opt/edge-agent-tests/bin/python -m pytest -p no:cacheprovider \
        --junitxml=/src/junit.xml --durations=15 -n ${ARM64_WORKERS:-2} --dist worksteal ${ignore[*]} ${ARM64_PYTEST_ARGS:-}" \
        >"$OUT/pytest.log" 2>&1 || rc=$?
    cp "$ER_ROOT/src/junit.xml" "$OUT/junit.xml" 2>/dev/null || true
    echo "pytest (exit $rc): $(tail -n 1 "$OUT/pytest.log")" | tee -a "$OUT/summary.txt"
    # Emulation runs 3-4x slower on a shared machine, and a few end-to-end tests have time budgets:
    # each failed test runs once more on its own. One that passes then is reported as timing-
    # sensitive under emulation; one that fails again fails the target.
    local failed=()
    mapfile -t failed < <(grep -oE '^(FAILED|ERROR) [^ ]+' "$OUT/pytest.log" | cut -d' ' -f2 | sort -u)
    if ((rc != 0 && ${#failed[@]})); then
        step "rerun of the ${#failed[@]} failed test(s), one at a time"
        rc=0
        local t
        for t in "${failed[@]}"; do
            if er_run /bin/sh -c "cd /src && exec /opt/edge-agent-tests/bin/python -m pytest -p no:cacheprovider -q '$t'" \
                >>"$OUT/pytest-rerun.log" 2>&1; then
                echo "  timing-sensitive under emulation (failed in the suite, passed alone): $t" | tee -a "$OUT/summary.txt"
            else
                echo "  FAILED twice: $t" | tee -a "$OUT/summary.txt"
                rc=1
            fi
        done
    fi
    ER_ENV=()
    ((rc == 0)) || step_failed "$rc"
    return "$rc"
}

# The reference plant for PLANT_S seconds, read back with `edge-agent tail` and checked.
plant() {
    step "reference plant for $PLANT_S s under emulation, read by edge-agent tail"
    # The chroot shares the host's network: every TCP port of the plant becomes a free one.
    local mqtt_port port ports=() args=()
    mqtt_port="$(free_port)"
    local plant_ports=()
    mapfile -t plant_ports < <(grep -oE '^port = [0-9]+' "$OUT/src/examples/reference-plant.toml" | awk '{print $3}' | sort -u)
    for port in "${plant_ports[@]}"; do
        ports+=("$(free_port)")
        args+=(-e "s/^port = $port\b/port = ${ports[-1]}/")
    done
    sed "${args[@]}" -e 's#^state_dir = .*#state_dir = "/var/lib/edge-agent/plant"#' \
        "$OUT/src/examples/reference-plant.toml" >"$ER_ROOT/root/plant.toml"
    cp "$OUT/src/tests/emulated/plant-run.sh" "$ER_ROOT/root/plant-run.sh"
    # At normal priority, not `make`'s nice 10: the simulated sensors run in real time (an ADXL345
    # FIFO holds 10 ms at 3.2 kHz), so this step measures the agent, not the neighbours' load.
    # ARM64_PLANT_NICE=N keeps it at niceness N instead (a benchmark running beside it).
    ER_NICE="$((${ARM64_PLANT_NICE:-0} - $(nice)))"
    er_run /bin/bash /root/plant-run.sh "$mqtt_port" "$PLANT_S" "${ports[@]}" >"$OUT/plant.log" 2>&1 ||
        { tail -n 30 "$OUT/plant.log"; return 1; }
    ER_NICE=""
    cp "$ER_ROOT/root/tail.jsonl" "$ER_ROOT/root/agent.log" "$OUT/"
    python3 "$OUT/src/tests/emulated/check_tail.py" "$OUT/tail.jsonl" "$OUT/agent.log" "$ER_ROOT/root/plant.toml" \
        --seconds "$PLANT_S" | tee "$OUT/plant-check.txt" | tee -a "$OUT/summary.txt"
    return "${PIPESTATUS[0]}"
}

main "$@"
