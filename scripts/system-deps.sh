#!/usr/bin/env bash
# Installs the system packages civicsense uses when they are missing and we may install them.
# mosquitto: the broker of the demo and the tests (amqtt, in-process, is the fallback).
set -euo pipefail
if command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing mosquitto (apt-get)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto </dev/null >/dev/null
else
  echo "note: mosquitto not found; the in-process amqtt broker will be used" >&2
fi
