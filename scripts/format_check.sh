#!/usr/bin/env bash
# Fails when a tracked or new C++ file is not clang-formatted (.clang-format at the root).
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files --cached --others --exclude-standard '*.h' '*.cc')
[ ${#files[@]} -eq 0 ] && exit 0
if ! clang-format --dry-run -Werror --style=file "${files[@]}"; then
  echo "format-check: run 'make format'" >&2
  exit 1
fi
echo "format-check: ${#files[@]} files formatted"
