#!/bin/sh
# Add (or change) one broker user and print its password once.
#   add-user.sh press-07            an agent: the user name is its [agent] id
#   add-user.sh ops                 the ops role (push-config, cmd, fleet)
#   add-user.sh panel               the technician's panel (edge-agent panel: [mqtt] password_file)
# The agent's password goes into /etc/edge-agent/mqtt.pass on that agent ([mqtt] password_file).
set -eu
user=${1:?usage: add-user.sh USER [PASSWD_FILE]}
file=${2:-/etc/mosquitto/edge-agent.passwd}
pass=$(head -c 18 /dev/urandom | base64 | tr -d '/+=' )
[ -f "$file" ] || { touch "$file"; chmod 600 "$file"; }
mosquitto_passwd -b "$file" "$user" "$pass"
# mosquitto reads the file as its own user once it has dropped root
if id mosquitto >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then chown mosquitto: "$file"; fi
echo "$user: $pass"
echo "reload the broker to take it: systemctl reload mosquitto (or kill -HUP the broker)" >&2
