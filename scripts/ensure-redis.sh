#!/usr/bin/env bash
# The integration tests start their own redis-server on a free loopback port; this makes sure
# the binary exists. On Debian/Ubuntu as root it installs Debian's package; otherwise it says how.
set -euo pipefail
command -v redis-server >/dev/null && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing redis-server (Debian package) for the integration tests"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  # the package starts a system service we do not use: tests run their own server
  (service redis-server stop || true) >/dev/null 2>&1
else
  echo "redis-server is not installed; install it (e.g. 'sudo apt-get install redis-server' or" \
       "'brew install redis') and run again" >&2
  exit 1
fi
