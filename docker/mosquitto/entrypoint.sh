#!/bin/sh
# Writes mosquitto's password file from the passwords in .env, then runs the command
# (compose: the image's own entrypoint, then mosquitto). The file is made at every start,
# on a tmpfs, so it is never committed nor kept on a volume; the passwords never appear
# on a command line (mosquitto_passwd -U hashes the plain file in place).
set -eu

file=${MOSQUITTO_PASSWORD_FILE:-/mosquitto/auth/passwd}
umask 077
rm -f "$file"
printf 'civicsense:%s\nchirpstack:%s\ngateway-bridge:%s\n' \
    "${MQTT_CIVICSENSE_PASSWORD:?}" "${MQTT_CHIRPSTACK_PASSWORD:?}" \
    "${MQTT_GATEWAY_BRIDGE_PASSWORD:?}" >"$file"
mosquitto_passwd -U "$file"
# mosquitto reads it after dropping root privileges to its own user.
if [ "$(id -u)" = 0 ] && id mosquitto >/dev/null 2>&1; then
    chown mosquitto:mosquitto "$file"
fi
exec "$@"
