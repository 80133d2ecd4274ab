#!/usr/bin/env bash
# `make demo`: the gateway and simulated insurers on 127.0.0.1, real enrolments from two medical
# houses, the insurers' answers as a table; then both keep running until Ctrl-C
# (PSL_DEMO_EXIT=1 stops right after the table). The codec path alone: scripts/demo_codecs.sh.
set -euo pipefail
build="${1:-build}"
root="$(cd "$(dirname "$0")/.." && pwd)"
shared="${PSL_SHARED_DIR:-$root/../shared}"
exec python3 "$root/scripts/demo.py" "$root/$build" "$shared"
