#!/usr/bin/env bash
# System packages some tests need, installed from Debian's packages when missing: headless
# Chromium at /usr/bin/chromium (never a browser download; the tests launch that path), node/npm
# (the analytics.js compatibility test installs @segment/analytics-next from npm), and promtool
# from Debian's `prometheus` package (tests/unit/deploy/test_prometheus_rules.py checks the
# scrape config and the alert rules and runs their unit tests with it).
# `make test` runs it and goes on with a warning if it cannot install them (only the tests that
# need them then fail); `.ci/run` runs it with --strict, which fails instead.
set -euo pipefail
strict=0
[ "${1:-}" = "--strict" ] && strict=1

missing() {
  local names=()
  [ -x /usr/bin/chromium ] || names+=(chromium)
  command -v npm >/dev/null || names+=(nodejs npm)
  command -v promtool >/dev/null || names+=(prometheus)
  echo "${names[@]:-}"
}

packages=$(missing)
if [ -z "$packages" ]; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing $packages (Debian packages) for the browser and alert-rule tests"
  apt-get update -qq
  # shellcheck disable=SC2086  # one word per package
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $packages >/dev/null
  packages=$(missing)
  if [ -z "$packages" ]; then
    exit 0
  fi
fi
echo "the browser and alert-rule tests need: $packages (e.g. apt-get install $packages); they will fail without" >&2
exit "$strict"
