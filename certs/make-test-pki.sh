#!/usr/bin/env bash
# Makes a throw-away test PKI with the OpenSSL 3.0 CLI. Tests and the demo run it into a temp dir;
# nothing it writes is ever committed.
#
# Usage: certs/make-test-pki.sh [--force] OUTDIR
#
# Layout of OUTDIR (every key is unencrypted RSA-2048 PEM unless stated):
#   ca.pem                        trust bundle: the test root CA only
#   root-ca.{key,pem}             self-signed root CA
#   intermediate.{key,pem}        "issuing" CA, signed by the root; issues every leaf below
#   <leaf>.key <leaf>.pem         leaf key and certificate
#   <leaf>-chain.pem              the issuing chain without the leaf (intermediate)
#   <leaf>-fullchain.pem          leaf followed by the intermediate (for TLS servers)
#   leaves: practice-81234530000, practice-85432155100 (medical houses, signing + TLS client),
#           gateway, insurer-100, insurer-300, insurer-500, insurer-600 (TLS server + client,
#           SAN DNS:localhost IP:127.0.0.1), auditor, ops (TLS client),
#           expired (issued by the intermediate, valid 2020-01-01 .. 2021-01-01 only)
#   practice-81234530000.p12      PKCS#12 bundle (key, cert, intermediate), password in
#   practice-81234530000.pass     (one line, no secret value: tests only)
#   practice-81234530000-encrypted.key  the same key as encrypted PKCS#8 PEM, same password
#   untrusted-root-ca.{key,pem}   a separate root that ca.pem does not trust
#   untrusted.{key,pem}           a leaf issued by that untrusted root (chain: untrusted-root-ca.pem)
set -euo pipefail

force=0
if [[ "${1:-}" == "--force" ]]; then
  force=1
  shift
fi
if [[ $# -ne 1 ]]; then
  echo "usage: $0 [--force] OUTDIR" >&2
  exit 2
fi
out="$1"
if [[ -e "$out/ca.pem" && $force -eq 0 ]]; then
  echo "$0: $out already holds a test PKI (ca.pem); pass --force to overwrite" >&2
  exit 1
fi
mkdir -p "$out"
cd "$out"
work="$(mktemp -d "${TMPDIR:-/tmp}/psl-pki.XXXXXX")"
trap 'rm -rf "$work"' EXIT

subject_base="/C=BE/O=Passerelle Test PKI"

new_key() {  # new_key FILE
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null
  chmod 600 "$1"
}

serial() { echo "0x$(openssl rand -hex 8)"; }

# ca_cert NAME SUBJECT_CN [ISSUER_NAME]: a CA certificate (self-signed when no issuer).
ca_cert() {
  local name="$1" cn="$2" issuer="${3:-}"
  new_key "$name.key"
  cat >"$work/$name.ext" <<EOF
basicConstraints=critical,CA:true
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid:always
EOF
  if [[ -z "$issuer" ]]; then
    openssl req -new -x509 -key "$name.key" -subj "$subject_base/CN=$cn" -days 3650 \
      -set_serial "$(serial)" -sha256 -extensions v3 \
      -config <(printf '[req]\ndistinguished_name=dn\n[dn]\n[v3]\n'; cat "$work/$name.ext") \
      -out "$name.pem"
  else
    openssl req -new -key "$name.key" -subj "$subject_base/CN=$cn" -out "$work/$name.csr"
    openssl x509 -req -in "$work/$name.csr" -CA "$issuer.pem" -CAkey "$issuer.key" \
      -set_serial "$(serial)" -days 3650 -sha256 -extfile "$work/$name.ext" -out "$name.pem" \
      2>/dev/null
  fi
}

# leaf_ext KIND: extensions for a leaf of that kind (signer, server, client).
leaf_ext() {
  echo "basicConstraints=critical,CA:false"
  echo "subjectKeyIdentifier=hash"
  echo "authorityKeyIdentifier=keyid,issuer"
  case "$1" in
    signer)
      echo "keyUsage=critical,digitalSignature,nonRepudiation,keyEncipherment"
      echo "extendedKeyUsage=clientAuth"
      ;;
    server)
      echo "keyUsage=critical,digitalSignature,keyEncipherment"
      echo "extendedKeyUsage=serverAuth,clientAuth"
      echo "subjectAltName=DNS:localhost,IP:127.0.0.1"
      ;;
    client)
      echo "keyUsage=critical,digitalSignature"
      echo "extendedKeyUsage=clientAuth"
      ;;
  esac
}

# leaf NAME KIND [ISSUER]: key + cert valid for 2 years from now, issued by ISSUER
# (default intermediate), plus -chain.pem and -fullchain.pem.
leaf() {
  local name="$1" kind="$2" issuer="${3:-intermediate}"
  new_key "$name.key"
  leaf_ext "$kind" >"$work/$name.ext"
  openssl req -new -key "$name.key" -subj "$subject_base/OU=$kind/CN=$name" -out "$work/$name.csr"
  openssl x509 -req -in "$work/$name.csr" -CA "$issuer.pem" -CAkey "$issuer.key" \
    -set_serial "$(serial)" -days 730 -sha256 -extfile "$work/$name.ext" -out "$name.pem" \
    2>/dev/null
  cp "$issuer.pem" "$name-chain.pem"
  cat "$name.pem" "$issuer.pem" >"$name-fullchain.pem"
}

ca_cert root-ca "Passerelle Test Root CA"
ca_cert intermediate "Passerelle Test Issuing CA" root-ca
cp root-ca.pem ca.pem

leaf practice-81234530000 signer
leaf practice-85432155100 signer
for name in gateway insurer-100 insurer-300 insurer-500 insurer-600; do
  leaf "$name" server
done
leaf auditor client
leaf ops client

# The expired leaf: `openssl x509` in 3.0 cannot back-date, `openssl ca` can (-startdate/-enddate).
mkdir -p "$work/ca/new"
: >"$work/ca/index.txt"
cat >"$work/ca.cnf" <<EOF
[ca]
default_ca = test_ca
[test_ca]
database = $work/ca/index.txt
new_certs_dir = $work/ca/new
serial = $work/ca/serial
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
[any]
countryName = optional
organizationName = optional
organizationalUnitName = optional
commonName = supplied
EOF
openssl rand -hex 8 >"$work/ca/serial"
new_key expired.key
leaf_ext signer >"$work/expired.ext"
openssl req -new -key expired.key -subj "$subject_base/OU=signer/CN=expired" -out "$work/expired.csr"
openssl ca -batch -notext -config "$work/ca.cnf" -cert intermediate.pem -keyfile intermediate.key \
  -startdate 20200101000000Z -enddate 20210101000000Z -extfile "$work/expired.ext" \
  -in "$work/expired.csr" -out expired.pem 2>/dev/null
cp intermediate.pem expired-chain.pem
cat expired.pem intermediate.pem >expired-fullchain.pem

ca_cert untrusted-root-ca "Untrusted Test Root CA"
leaf untrusted signer untrusted-root-ca

# PKCS#12 and encrypted PEM for the first practice. The password is test material only.
printf 'test-p12-password\n' >practice-81234530000.pass
chmod 600 practice-81234530000.pass
openssl pkcs12 -export -inkey practice-81234530000.key -in practice-81234530000.pem \
  -certfile intermediate.pem -name practice-81234530000 \
  -passout file:practice-81234530000.pass -out practice-81234530000.p12
openssl pkcs8 -topk8 -v2 aes-256-cbc -in practice-81234530000.key \
  -passout file:practice-81234530000.pass -out practice-81234530000-encrypted.key
chmod 600 practice-81234530000-encrypted.key practice-81234530000.p12
