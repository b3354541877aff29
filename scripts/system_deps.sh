#!/usr/bin/env bash
# System packages the browser tests need, installed from Debian's packages when missing:
# headless Chromium (never a browser download) and node/npm (the analytics.js compatibility test
# installs @segment/analytics-next from npm). Run by `make test` and `.ci/run`.
set -euo pipefail
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v npm >/dev/null || missing+=(nodejs npm)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing ${missing[*]} (Debian packages) for the browser tests"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "the browser tests need: ${missing[*]} -- install them (e.g. apt-get install ${missing[*]})" >&2
  exit 1
fi
