#!/usr/bin/env bash
# install-deps.sh: install the Debian packages the tests need, only when they
# are missing. Called by `make test`; safe to run again.
#   postgresql  the PostgreSQL store's tests start a throwaway cluster
#   prometheus  promtool checks /metrics; the Prometheus source's tests scrape
set -euo pipefail

missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)

((${#missing[@]} == 0)) && exit 0
echo "installing: ${missing[*]}" >&2
SUDO=""
[[ $(id -u) -eq 0 ]] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
# Install without starting services: the tests start their own servers.
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
