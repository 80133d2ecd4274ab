#!/usr/bin/env bash
# CI check of deploy/passerelle.example.toml: rewrites its absolute paths (/etc/passerelle,
# /var/lib/passerelle, /usr/share/passerelle) into a temporary folder, creates every file and
# folder it names (secrets mode 0600), and requires `passerelle check-config` to accept it
# without a single problem, warnings included.
# Usage: check_example_config.sh PASSERELLE_BINARY EXAMPLE_TOML
set -euo pipefail

passerelle=$1
example=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

config="$tmp/etc/passerelle.toml"
mkdir -p "$tmp/etc" "$tmp/state" "$tmp/share/schemas"
sed -e "s#/etc/passerelle/#$tmp/etc/#g" \
    -e "s#/var/lib/passerelle/#$tmp/state/#g" \
    -e "s#/usr/share/passerelle/schemas#$tmp/share/schemas#g" "$example" > "$config"

if grep -nE '"/(etc|var|usr)/' "$config"; then
  echo "check_example_config: the example names a path outside the rewritten prefixes" >&2
  exit 1
fi

# Every quoted value of a *_file key under the temporary folder is a file to create.
grep -E '^[a-z_]+_file *= *"' "$config" | sed -E 's/^[^"]*"([^"]*)".*/\1/' | grep "^$tmp/" |
while read -r f; do
  mkdir -p "$(dirname "$f")"
  : > "$f"
  chmod 600 "$f"
done

out=$("$passerelle" check-config "$config" 2>&1) || {
  echo "$out" >&2
  exit 1
}
echo "$out"
if [ "$(echo "$out" | grep -vc ': ok$')" -ne 0 ]; then
  echo "check_example_config: the example must load without warnings" >&2
  exit 1
fi
