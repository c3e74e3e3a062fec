#!/bin/bash
# Runs INSIDE the emulated root (tests/emulated/test-arm64.sh): mosquitto, `edge-agent plantsim`
# (the simulated PLCs and accelerometers of the reference plant, /root/plant.toml) and the
# installed agent for S seconds, with `edge-agent tail` writing every message to /root/tail.jsonl.
# Stops everything it started, whatever happens. Usage: plant-run.sh MQTT_PORT S PLC_PORT...
set -euo pipefail
MQTT_PORT="$1"
SECONDS_RUN="$2"
shift 2
BIN=/opt/edge-agent/venv/bin
PIDS=()

# shellcheck disable=SC2317 # called by the EXIT trap
stop_all() {
    local i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill -TERM "${PIDS[i]}" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$pid" 2>/dev/null || true
    done
}
trap stop_all EXIT

wait_port() {
    for _ in $(seq 300); do
        "$BIN/python" -c "import socket, sys; socket.create_connection(('127.0.0.1', $1), 1)" 2>/dev/null && return 0
        sleep 0.2
    done
    echo "nothing listens on port $1" >&2
    return 1
}

printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$MQTT_PORT" >/root/mosquitto.conf
mosquitto -c /root/mosquitto.conf >/root/mosquitto.log 2>&1 &
PIDS+=($!)
"$BIN/edge-agent" plantsim -c /root/plant.toml >/root/plantsim.log 2>&1 &
PIDS+=($!)
wait_port "$MQTT_PORT"
for port in "$@"; do wait_port "$port"; done
for _ in $(seq 300); do [[ -s /root/plantsim.log ]] && break; sleep 0.2; done
echo "plantsim: $(head -c 300 /root/plantsim.log)"
export EDGE_AGENT_MQTT_URL="mqtt://127.0.0.1:$MQTT_PORT"
"$BIN/edge-agent" check-config /root/plant.toml
# The reader first, so it sees the agent's first messages.
"$BIN/edge-agent" tail --seconds "$((SECONDS_RUN + 15))" >/root/tail.jsonl 2>/root/tail.err &
TAIL=$!
sleep 3
t0=$SECONDS
"$BIN/edge-agent" run -c /root/plant.toml >/root/agent.log 2>&1 &
AGENT=$!
PIDS+=("$AGENT")
sleep "$SECONDS_RUN"
kill -TERM "$AGENT"
rc=0
wait "$AGENT" || rc=$?
echo "agent ran $((SECONDS - t0)) s, exit $rc after SIGTERM"
kill -TERM "$TAIL" 2>/dev/null || true
wait "$TAIL" || true
echo "tail: $(wc -l </root/tail.jsonl) messages"
exit "$rc"
