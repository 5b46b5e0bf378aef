#!/usr/bin/env bash
# Makes sure what the tests talk to is installed and running: RabbitMQ (127.0.0.1:5672) and
# Mosquitto (127.0.0.1:1883) for the broker transports. Idempotent: does nothing when they
# already answer. A fresh machine gets them from Debian's packages.
set -uo pipefail

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  for _ in $(seq 1 120); do answers "$1" && return 0; sleep 0.5; done
  return 1
}

apt_install() {
  if [ "$(id -u)" -ne 0 ]; then echo "services: not root, cannot install $*"; return 1; fi
  if [ -z "${_apt_updated:-}" ]; then apt-get update -q >/dev/null 2>&1; _apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1
}

if ! answers 5672; then
  command -v rabbitmq-server >/dev/null 2>&1 || apt_install rabbitmq-server
  echo "services: starting RabbitMQ"
  rabbitmq-server -detached >/dev/null 2>&1 || true
  wait_port 5672 || echo "services: RabbitMQ did not come up (broker tests will report it)"
fi

if ! answers 1883; then
  command -v mosquitto >/dev/null 2>&1 || apt_install mosquitto
  echo "services: starting Mosquitto"
  if [ -f /etc/mosquitto/mosquitto.conf ]; then
    mosquitto -d -c /etc/mosquitto/mosquitto.conf >/dev/null 2>&1 || true
  else
    mosquitto -d >/dev/null 2>&1 || true
  fi
  wait_port 1883 || echo "services: Mosquitto did not come up (broker tests will report it)"
fi
exit 0
