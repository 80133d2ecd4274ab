#!/usr/bin/env bash
# CI check of deploy/passerelle.service with `systemd-analyze verify`. The unit names the installed
# binary (/usr/local/bin/passerelle), which verify requires to exist, so a copy is verified with
# that path rewritten to the freshly built binary. Exit 77 (ctest: skipped) without systemd-analyze.
# Usage: verify_systemd_unit.sh PASSERELLE_BINARY UNIT_FILE
set -euo pipefail

passerelle=$1
unit=$2
if ! command -v systemd-analyze >/dev/null; then
  echo "verify_systemd_unit: systemd-analyze not found; skipped"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "s#/usr/local/bin/passerelle#$passerelle#g" "$unit" > "$tmp/passerelle.service"
# verify prints problems (unknown settings, bad values, missing binaries) and exits non-zero on
# errors; warnings also print, so any output fails the check.
out=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "$tmp/passerelle.service" 2>&1) || {
  echo "$out" >&2
  exit 1
}
if [ -n "$out" ]; then
  echo "$out" >&2
  exit 1
fi
echo "verify_systemd_unit: $unit verifies"
