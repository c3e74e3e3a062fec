# shellcheck shell=bash
# Shared by test-arm64.sh and smoke-armhf.sh: timed steps with a summary, clean-up on any exit,
# and the spidev ABI check. The caller sets REPO, OUT, LABEL and sources deploy/emulated-root.sh.

T0=$SECONDS
STEP_T=$SECONDS
STEP_NAME=""
STEP_RC=0 # the current step's own verdict (step_failed), so a later failure is not booked to it

# Starts a timed step; the previous one's time and verdict go to the summary.
step() {
    end_step
    STEP_NAME="$1"
    STEP_T=$SECONDS
    echo "==> [$(date -u +%H:%M:%S)] $1"
}

# The current step failed with exit code $1, and the run goes on to the next step.
step_failed() { STEP_RC=$1; }

# Closes the current step: its time, and FAILED only if step_failed said so.
end_step() {
    [[ -z "$STEP_NAME" ]] || echo "$STEP_NAME: $((SECONDS - STEP_T)) s$( ((STEP_RC == 0)) || echo " (FAILED, exit $STEP_RC)")" >>"$OUT/summary.txt"
    STEP_NAME=""
    STEP_RC=0
}

# EXIT trap: undo the mounts, close the summary, say PASSED or FAILED.
finish() {
    local rc=$?
    # A second signal (make passes SIGTERM on to its children) must not cut the clean-up short.
    trap '' INT TERM HUP
    er_session_end
    # A step still open when the script exits non-zero is the one that failed.
    ((rc == 0 || STEP_RC != 0)) || STEP_RC=$rc
    end_step
    echo "total: $((SECONDS - T0)) s; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/summary.txt"
    echo "--- $OUT/summary.txt"
    cat "$OUT/summary.txt"
    if ((rc == 0)); then echo "$LABEL: PASSED"; else echo "$LABEL: FAILED (logs in $OUT)"; fi
}

start_summary() {
    rm -rf "$OUT"
    mkdir -p "$OUT"
    echo "$LABEL on $(uname -m), $(nproc) cores, load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)" >"$OUT/summary.txt"
    trap finish EXIT
    trap 'exit 130' INT TERM
}

# The working tree's files (tracked and new, not .venv/ or build/) copied to DIR: what the wheel
# is built from (not the tree itself: setuptools writes build/ and *.egg-info into its source).
export_tree() {
    mkdir -p "$1"
    (cd "$REPO" && git ls-files -z --cached --others --exclude-standard | xargs -0 tar --ignore-failed-read -cf - 2>/dev/null) |
        tar -C "$1" -xf -
}

# A free TCP port on 127.0.0.1 (the chroot shares the host's network: never a fixed port).
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# The spidev transfer struct and ioctl numbers from the target's C headers and compiler, against
# what edge-agent's Python computes on the target (PYTHON: an interpreter with edge_agent).
abi_check() {
    local python="$1"
    cp "$REPO/tests/emulated/spi_abi.c" "$REPO/tests/emulated/spi_abi.py" "$ER_ROOT/root/"
    er_run gcc -O0 -o /root/spi_abi /root/spi_abi.c
    er_run /root/spi_abi >"$OUT/spi_abi.c.txt"
    er_run "$python" /root/spi_abi.py >"$OUT/spi_abi.py.txt"
    if diff "$OUT/spi_abi.c.txt" "$OUT/spi_abi.py.txt" >"$OUT/spi_abi.diff"; then
        echo "spidev ABI: C headers and Python agree ($(tr '\n' ';' <"$OUT/spi_abi.c.txt"))" | tee -a "$OUT/summary.txt"
    else
        echo "spidev ABI MISMATCH (C vs Python):" | tee -a "$OUT/summary.txt"
        tee -a "$OUT/summary.txt" <"$OUT/spi_abi.diff"
        return 1
    fi
}
