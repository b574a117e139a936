#!/usr/bin/env bash
# Installs the system packages civicsense uses when they are missing and we may install them.
# mosquitto: the broker of the demo and the tests (amqtt, in-process, is the fallback).
# chromium: the browser the control-map test drives with Playwright (skipped without it).
set -euo pipefail
can_install() {
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1
}
updated=0
apt_install() {
  if [ "$updated" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null >/dev/null
    updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" </dev/null >/dev/null
}
if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
  if can_install; then
    echo "installing mosquitto (apt-get)" >&2
    apt_install mosquitto
  else
    echo "note: mosquitto not found; the in-process amqtt broker will be used" >&2
  fi
fi
if [ ! -x /usr/bin/chromium ]; then
  if can_install; then
    echo "installing chromium (apt-get)" >&2
    apt_install chromium
  else
    echo "note: chromium not found; the control-map browser test will be skipped" >&2
  fi
fi
