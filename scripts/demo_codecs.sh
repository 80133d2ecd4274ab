#!/usr/bin/env bash
# The codec path on its own (`scripts/demo_codecs.sh build`): validate, sign and verify real MHM
# requests with real keys and two verifiers, no service. `make demo` runs the service (demo.py).
set -euo pipefail
build="${1:-build}"
root="$(cd "$(dirname "$0")/.." && pwd)"
shared="${PSL_SHARED_DIR:-$root/../shared}"
psl="$root/$build/gateway/passerelle"
work="$root/$build/demo"
rm -rf "$work"
mkdir -p "$work"
export PSL_SCHEMAS_DIR="$shared/schemas"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. A test PKI (root CA, issuing CA, medical houses, gateway, insurers) made with OpenSSL"
"$root/certs/make-test-pki.sh" "$work/pki" >/dev/null
ls "$work/pki" | grep -E '^(ca|practice-81234530000|gateway|insurer-100)\.pem$' | sed 's/^/   /'

step "2. Validate the shared synthetic MHM samples (on their own date, 2025-01-02)"
"$psl" validate --at 2025-01-02 "$shared"/samples/mhm-*.xml

step "3. A practice's enrolment request dated today: validate"
python3 - "$root/conformance/e2e" "$shared" "$work/request.xml" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import harness  # the shared sample re-dated to today (Brussels), unsigned
open(sys.argv[3], "wb").write(harness.enrolment(sys.argv[2], mutuality=None))
PY
"$psl" validate "$work/request.xml"

step "4. The same request with one altered check digit in the patient's NISS: precise refusal"
python3 - "$work/request.xml" "$work/bad-request.xml" <<'PY'
import base64, re, sys
env = open(sys.argv[1]).read()
m = re.search(r"(<mcp:Detail[^>]*>)([^<]*)(</mcp:Detail>)", env)
d = base64.b64decode(m.group(2)).decode().replace(">90010100123<", ">90010100124<")
open(sys.argv[2], "w").write(env[:m.start(2)] + base64.b64encode(d.encode()).decode() + env[m.end(2):])
PY
"$psl" validate "$work/bad-request.xml" || echo "   (exit $? : invalid, as expected)"

pki="$work/pki"
# Debian's xmlsec1, told which attributes are IDs and which certificates it may trust.
xmlsec1_verify() {
  xmlsec1 --verify --enabled-reference-uris same-doc \
    --id-attr:Id urn:be:fgov:ehealth:mycarenet:commons:protocol:v3:Detail \
    --id-attr:Id http://uri.etsi.org/01903/v1.3.2#:SignedProperties \
    --trusted-pem "$pki/ca.pem" --untrusted-pem "$pki/practice-81234530000-chain.pem" "$1"
}
step "5. Sign it: XAdES-BES detached over Detail with the medical house's key"
"$psl" sign --key "$pki/practice-81234530000.key" --cert "$pki/practice-81234530000.pem" \
  --chain "$pki/practice-81234530000-chain.pem" --out "$work/signed.xml" "$work/request.xml"
echo "   signed: $(wc -c <"$work/signed.xml") bytes, Xades element present: $(grep -c '<mcp:Xades>' "$work/signed.xml")"

step "6. Verify with Passerelle's verifier"
"$psl" verify --trust "$pki/ca.pem" "$work/signed.xml"

step "7. Verify with an independent verifier (Debian's xmlsec1)"
python3 "$root/scripts/embed_xades.py" "$work/signed.xml" "$work/signed-embedded.xml"
xmlsec1_verify "$work/signed-embedded.xml" 2>&1 | grep -E '^(OK|FAIL)|SignedInfo References' | sed 's/^/   /'

step "8. Change one letter inside Detail (a name in the kmehr): both verifiers refuse"
python3 - "$work/signed.xml" "$work/tampered.xml" <<'PY'
import base64, re, sys
env = open(sys.argv[1]).read()
m = re.search(r"(<mcp:Detail[^>]*>)([^<]*)(</mcp:Detail>)", env)
d = base64.b64decode(m.group(2)).decode().replace("Maison medicale", "Maison medicaIe", 1)
open(sys.argv[2], "w").write(env[:m.start(2)] + base64.b64encode(d.encode()).decode() + env[m.end(2):])
PY
"$psl" verify --trust "$pki/ca.pem" "$work/tampered.xml" || echo "   (exit $? : refused)"
python3 "$root/scripts/embed_xades.py" "$work/tampered.xml" "$work/tampered-embedded.xml"
if xmlsec1_verify "$work/tampered-embedded.xml" >"$work/xmlsec1-tampered.log" 2>&1; then
  echo "   xmlsec1 accepted the tampered request: this is a bug"
  exit 1
fi
echo "   xmlsec1: $(grep -m1 -oE 'data and digest do not match|signature verification failed|FAIL' "$work/xmlsec1-tampered.log" || echo refused)"

step "Done. Files in $work"
