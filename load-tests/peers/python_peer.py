#!/usr/bin/python3
"""The Python peer of load-tests/bench: the per-document intake work a team would write with
Debian's python3-lxml and python3-xmlsec, on one thread.

Per document: parse the MHM envelope (lxml), validate it against the MHM XSD, base64-decode and
parse the Detail, validate it against the kmehr messageservices XSD (the same wrapper the gateway
compiles for the message's kmehr version, given as --detail-xsd), then a XAdES-BES detached
signature over the Detail like codecs/xades.h: ds:Signature (exc-c14n, rsa-sha256) with a
Reference to #<Detail/@Id> (base64 then exc-c14n, sha256) and one to the SignedProperties,
KeyInfo/X509Data, Object/QualifyingProperties/SignedProperties/SignedSignatureProperties/
{SigningTime, SigningCertificate/Cert/{CertDigest, IssuerSerial}}; base64 of the signature goes into
a Xades element after Detail and the envelope is serialised. The key is loaded once.

Warm-up for --warmup seconds, then as many documents as fit in --seconds; prints one JSON line:
{"docs_per_s": documents per CPU second of this process, "wall_docs_per_s", "docs", ...}.
"""
import argparse
import base64
import datetime
import hashlib
import json
import subprocess
import time
import uuid

from lxml import etree
import xmlsec

COMMONS = "urn:be:fgov:ehealth:mycarenet:commons:protocol:v3"
DS = "http://www.w3.org/2000/09/xmldsig#"
XADES = "http://uri.etsi.org/01903/v1.3.2#"
SIGNED_PROPS_TYPE = "http://uri.etsi.org/01903#SignedProperties"


class Peer:
    def __init__(self, envelope_xsd, detail_xsd, key, cert, chain=None):
        parser = etree.XMLParser(resolve_entities=False, no_network=True)
        self.parser = parser
        self.envelope_schema = etree.XMLSchema(etree.parse(envelope_xsd))
        self.detail_schema = etree.XMLSchema(etree.parse(detail_xsd))
        self.key = xmlsec.Key.from_file(key, xmlsec.constants.KeyDataFormatPem)
        self.key.load_cert_from_file(cert, xmlsec.constants.KeyDataFormatPem)
        if chain:  # KeyInfo carries the leaf, then the chain, as ours does
            self.key.load_cert_from_file(chain, xmlsec.constants.KeyDataFormatPem)
        der = subprocess.run(["openssl", "x509", "-in", cert, "-outform", "DER"], capture_output=True, check=True).stdout
        self.cert_digest = base64.b64encode(hashlib.sha256(der).digest()).decode()
        issuer = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-issuer", "-serial", "-nameopt", "RFC2253"],
                                capture_output=True, text=True, check=True).stdout.splitlines()
        self.issuer = issuer[0].split("=", 1)[1].strip()
        self.serial = str(int(issuer[1].split("=", 1)[1].strip(), 16))

    def process(self, data):
        doc = etree.fromstring(data, self.parser)
        if not self.envelope_schema.validate(doc):
            raise ValueError("envelope not valid: %s" % self.envelope_schema.error_log.last_error)
        detail = doc.find("{%s}Detail" % COMMONS)
        payload = etree.fromstring(base64.b64decode(detail.text), self.parser)
        if not self.detail_schema.validate(payload):
            raise ValueError("detail not valid: %s" % self.detail_schema.error_log.last_error)
        return self.sign(doc, detail)

    def sign(self, doc, detail):
        sid = "xmldsig-" + str(uuid.uuid4())
        sig = xmlsec.template.create(doc, xmlsec.constants.TransformExclC14N, xmlsec.constants.TransformRsaSha256,
                                     ns="ds", name=sid)
        sig.set("Id", sid)
        ref = xmlsec.template.add_reference(sig, xmlsec.constants.TransformSha256, uri="#" + detail.get("Id"))
        c14n = xmlsec.template.add_transform(ref, xmlsec.constants.TransformExclC14N)
        # python-xmlsec has no constant for the base64 transform; libxmlsec1 finds it by href.
        b64 = etree.Element("{%s}Transform" % DS)
        b64.set("Algorithm", DS + "base64")
        c14n.addprevious(b64)
        ref2 = xmlsec.template.add_reference(sig, xmlsec.constants.TransformSha256, uri="#%s-xades-signedprops" % sid,
                                             type=SIGNED_PROPS_TYPE)
        xmlsec.template.add_transform(ref2, xmlsec.constants.TransformExclC14N)
        key_info = xmlsec.template.ensure_key_info(sig)
        xmlsec.template.add_x509_data(key_info)
        obj = etree.SubElement(sig, "{%s}Object" % DS)
        qp = etree.SubElement(obj, "{%s}QualifyingProperties" % XADES, nsmap={"xades": XADES})
        qp.set("Target", "#" + sid)
        sp = etree.SubElement(qp, "{%s}SignedProperties" % XADES)
        sp.set("Id", sid + "-xades-signedprops")
        ssp = etree.SubElement(sp, "{%s}SignedSignatureProperties" % XADES)
        etree.SubElement(ssp, "{%s}SigningTime" % XADES).text = \
            datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        cert = etree.SubElement(etree.SubElement(ssp, "{%s}SigningCertificate" % XADES), "{%s}Cert" % XADES)
        cd = etree.SubElement(cert, "{%s}CertDigest" % XADES)
        etree.SubElement(cd, "{%s}DigestMethod" % DS).set("Algorithm", "http://www.w3.org/2001/04/xmlenc#sha256")
        etree.SubElement(cd, "{%s}DigestValue" % DS).text = self.cert_digest
        iss = etree.SubElement(cert, "{%s}IssuerSerial" % XADES)
        etree.SubElement(iss, "{%s}X509IssuerName" % DS).text = self.issuer
        etree.SubElement(iss, "{%s}X509SerialNumber" % DS).text = self.serial
        doc.append(sig)  # in the document while signing, so the #Id references resolve
        ctx = xmlsec.SignatureContext()
        ctx.key = self.key
        ctx.register_id(detail, "Id")
        ctx.register_id(sp, "Id")
        ctx.sign(sig)
        doc.remove(sig)
        xades = etree.Element("{%s}Xades" % COMMONS)
        xades.text = base64.b64encode(etree.tostring(sig)).decode()
        detail.addnext(xades)
        return etree.tostring(doc, xml_declaration=True, encoding="UTF-8")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--envelope-xsd", required=True)
    ap.add_argument("--detail-xsd", required=True)
    ap.add_argument("--envelope", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--chain", help="PEM intermediate certificate(s) to carry in KeyInfo")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--out", help="write one signed envelope here (to check it with passerelle verify)")
    a = ap.parse_args()
    data = open(a.envelope, "rb").read()
    peer = Peer(a.envelope_xsd, a.detail_xsd, a.key, a.cert, a.chain)
    signed = peer.process(data)
    if a.out:
        open(a.out, "wb").write(signed)
    end = time.monotonic() + a.warmup
    while time.monotonic() < end:
        peer.process(data)
    docs = 0
    c0, w0 = time.process_time(), time.monotonic()
    while time.monotonic() - w0 < a.seconds:
        peer.process(data)
        docs += 1
    cpu, wall = time.process_time() - c0, time.monotonic() - w0
    print(json.dumps({"peer": "python", "docs": docs, "cpu_s": round(cpu, 3), "wall_s": round(wall, 3),
                      "docs_per_s": docs / cpu if cpu > 0 else None, "wall_docs_per_s": docs / wall,
                      "lxml": ".".join(map(str, etree.LXML_VERSION)), "libxml2": ".".join(map(str, etree.LIBXML_VERSION)),
                      "xmlsec": xmlsec.__version__}))


if __name__ == "__main__":
    main()
