#!/usr/bin/env bash
# System packages the browser tests need, installed from Debian's packages when missing:
# headless Chromium at /usr/bin/chromium (never a browser download; the tests launch that path)
# and node/npm (the analytics.js compatibility test installs @segment/analytics-next from npm).
# `make test` runs it and goes on with a warning if it cannot install them (only the browser
# tests then fail); `.ci/run` runs it with --strict, which fails instead.
set -euo pipefail
strict=0
[ "${1:-}" = "--strict" ] && strict=1

missing() {
  local names=()
  [ -x /usr/bin/chromium ] || names+=(chromium)
  command -v npm >/dev/null || names+=(nodejs npm)
  echo "${names[@]:-}"
}

packages=$(missing)
if [ -z "$packages" ]; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing $packages (Debian packages) for the browser tests"
  apt-get update -qq
  # shellcheck disable=SC2086  # one word per package
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $packages >/dev/null
  packages=$(missing)
  if [ -z "$packages" ]; then
    exit 0
  fi
fi
echo "the browser tests need: $packages (e.g. apt-get install $packages); they will fail without" >&2
exit "$strict"
