#!/usr/bin/env python3
"""Writes the eFact conformance corpus conformance/efact/ (genasync post + eFact 920000 file).

Usage: generate_efact_corpus.py              rewrite conformance/efact/
       generate_efact_corpus.py --check      regenerate in memory and fail (exit 1) if the
                                             committed corpus differs (ctest efact_corpus_up_to_date)

Deterministic, standard library only. The eFact files start from the synthetic seeds that
efact_fuzz_replay --write-seeds writes into codecs/testdata/efact (built by the C++ eFact writer
from codecs/testing/efact_test_support.h: every identifier invented, valid check digits), patched
here zone by zone with the record checksum (DOMAIN.md §2.5) recomputed. Each zone patched is
checked against its expected old content first, so a changed seed fails loudly instead of
producing a corpus that tests something else.
"""

import argparse
import base64
import os
import shutil
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
SEEDS = os.path.join(HERE, "..", "codecs", "testdata", "efact")
HEADER = 227
RECORD = 350
SENDER_NIHII = "12345625004"
MEDICAL_HOUSE_NIHII = "81234530000"  # valid check digits, medical-house suffix 000
OTHER_NIHII = "11478761004"  # DOMAIN.md §2.2 worked example (a valid NIHII, not the sender)
SENSITIVE = ["85073003328", "17073003384", "85493000163"]

# 0-based offsets and lengths of the zones patched here (codecs/efact.cc layout tables).
ZONES = {
    ("10", "14"): (55, 12),
    ("20", "14"): (55, 12),
    ("80", "14"): (55, 12),
    ("90", "14"): (55, 12),
    ("20", "7"): (32, 3),
    ("20", "8"): (35, 13),
    ("20", "18"): (84, 3),
    ("20", "28"): (137, 25),
    ("50", "7"): (32, 3),
    ("80", "7"): (32, 3),
    ("80", "18"): (84, 3),
    ("80", "19"): (87, 12),
}


def seed(name):
    with open(os.path.join(SEEDS, name), "rb") as f:
        return f.read().decode("ascii")


def char_value(c):
    if c.isdigit():
        return int(c)
    if c == " ":
        return 10
    if "A" <= c <= "Z" or "a" <= c <= "z":
        return ord(c.upper()) - ord("A") + 11
    return 37


def checksum(zones):
    total = sum(char_value(c) for c in zones) % 97
    return 97 if total == 0 else total


def patch(text, ordinal, zone, old, new, keep_checksum=False):
    """Sets `zone` of record `ordinal` (record 10 = 1) from `old` to `new`."""
    start = HEADER + (ordinal - 1) * RECORD
    record = text[start:start + RECORD]
    kind = record[:2]
    offset, length = ZONES[(kind, zone)]
    current = record[offset:offset + length]
    if current.strip() != old:
        raise SystemExit("seed changed: record %d (type %s) zone %s is %r, expected %r"
                         % (ordinal, kind, zone, current, old))
    value = new.ljust(length) if not new.isdigit() else new.rjust(length, "0")
    assert len(value) == length, (zone, new)
    record = record[:offset] + value + record[offset + length:]
    if not keep_checksum:
        record = record[:348] + "%02d" % checksum(record[:348])
    return text[:start] + record + text[start + RECORD:]


def deflate(data):
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def envelope(comment, file_text="", encoding="deflate", message_name="HCPFAC",
             content_type="text/plain", origin_nihii=SENDER_NIHII, content=None, root="post",
             extra="", wrap=False, encoding_attr=True):
    raw = file_text.encode("ascii")
    if content is None:
        blob = deflate(raw) if encoding == "deflate" else raw
        content = (base64.encodebytes(blob).decode("ascii").strip() if wrap
                   else base64.b64encode(blob).decode("ascii"))
    provider = ""
    if origin_nihii:
        provider = ("\n      <c:CareProvider>\n        <c:Nihii><c:Quality>doctor</c:Quality>"
                    "<c:Value>%s</c:Value></c:Nihii>\n      </c:CareProvider>" % origin_nihii)
    enc = ' ContentEncoding="%s"' % encoding if encoding_attr else ""
    return ("""<?xml version="1.0" encoding="UTF-8"?>
<!-- %s -->
<gen:%s xmlns:gen="urn:be:cin:nip:async:generic" xmlns:c="urn:be:cin:mycarenet:esb:common:v2">
  <gen:CommonInput>
    <c:Request><c:IsTest>true</c:IsTest></c:Request>
    <c:Origin>
      <c:Package>
        <c:Name>ExampleSoftware</c:Name>
        <c:License><c:Username>SOFTWARE-LICENSE-USER</c:Username><c:Password>SOFTWARE-LICENSE-PASSWORD</c:Password></c:License>
      </c:Package>%s
    </c:Origin>
    <c:InputReference>20250102093000001</c:InputReference>
  </gen:CommonInput>
  <gen:Detail ContentType="%s"%s MessageName="%s" Id="blob-1">%s</gen:Detail>%s
</gen:%s>
""" % (comment, root, provider, content_type, enc, message_name, content, extra, root))


def cases():
    two = seed("valid-two-destinations.txt")
    amu = seed("valid-mediprima.txt")
    # Records of `two`: 1=10, 2=20 (319→300), 3=50, 4=50, 5=80, 6=20 (306→306), 7=50, 8=51,
    # 9=52, 10=80, 11=90, 12/13=95, 14=96.
    solidaris_304 = two
    for ordinal in (2, 3, 4, 5):
        solidaris_304 = patch(solidaris_304, ordinal, "7", "319", "304")
    foreign_affiliation = patch(two, 2, "7", "319", "501")
    # Invoice 2 affiliated to 310 (a non-Solidaris-union 3xx) and sent to 306: right only for a
    # medical house (DestinationFor), wrong for the ordinary sender of the seed.
    affiliation_310 = two
    for ordinal in (6, 7, 10):
        affiliation_310 = patch(affiliation_310, ordinal, "7", "306", "310")
    medical_house = affiliation_310
    for ordinal in (1, 2, 5, 6, 10, 11):
        medical_house = patch(medical_house, ordinal, "14", "0" + SENDER_NIHII,
                              "0" + MEDICAL_HOUSE_NIHII)
    multi = two
    for ordinal in (6, 7, 10):
        multi = patch(multi, ordinal, "7", "306", "501")
    multi = patch(multi, 6, "18", "306", "501")
    multi = patch(multi, 10, "18", "306", "501")

    valid = {
        "hcpfac_deflate": envelope("valid: HCPFAC, two Solidaris destinations (300, 306), deflate",
                                   two),
        "hcpfac_none": envelope("valid: HCPFAC, ContentEncoding none", two, encoding="none"),
        "hcpfac_encoding_absent": envelope("valid: ContentEncoding absent = deflate (schema "
                                           "default)", two, encoding_attr=False),
        "hcpfac_base64_wrapped": envelope("valid: base64 wrapped at 76 characters", two,
                                          wrap=True),
        "hcpfac_no_care_provider": envelope("valid: Origin without CareProvider (nothing to "
                                            "compare with the file's sender)", two,
                                            origin_nihii=""),
        "hcpfac_solidaris_304": envelope("valid: affiliation 304 goes to destination 300",
                                         solidaris_304),
        "hcpfac_medical_house_306": envelope("valid: a medical house sends affiliation 310 to "
                                             "destination 306", medical_house,
                                             origin_nihii=MEDICAL_HOUSE_NIHII),
        "ecm_hcpfac_mediprima": envelope("valid: ECM-HCPFAC urgent medical aid invoice, "
                                         "destination 690", amu, message_name="ECM-HCPFAC"),
    }
    invalid = {
        ("209902", "record_checksum"): envelope(
            "invalid: record 2 (20) zone 28 changed without its checksum (zone 99)",
            seed("bad-record-checksum.txt")),
        ("200802", "niss_check_digits"): envelope(
            "invalid: record 2 (20) zone 8 NISS with wrong check digits",
            seed("bad-niss.txt")),
        ("PSL-EFACT-TOTAL", "invoice_total"): envelope(
            "invalid: record 5 (80) zone 19 is not the sum of its acts",
            seed("bad-invoice-total.txt")),
        ("PSL-EFACT-DESTINATION", "affiliation_destination"): envelope(
            "invalid: affiliation 501 sent to destination 300", foreign_affiliation),
        ("PSL-EFACT-DESTINATION", "ordinary_sender_to_306"): envelope(
            "invalid: affiliation 310 sent to 306 by a sender that is not a medical house",
            affiliation_310),
        ("PSL-GENASYNC-MULTI-INSURER", "two_unions"): envelope(
            "invalid: invoices for union 300 and union 500 in one batch", multi),
        ("PSL-GENASYNC-SENDER", "origin_not_file_sender"): envelope(
            "invalid: Origin CareProvider NIHII differs from record 10 zone 14", two,
            origin_nihii=OTHER_NIHII),
        ("PSL-GENASYNC-MESSAGENAME", "hcpafd"): envelope(
            "invalid: MessageName HCPAFD is not an invoicing post", two, message_name="HCPAFD"),
        ("PSL-GENASYNC-MEDIPRIMA", "amu_file_as_hcpfac"): envelope(
            "invalid: a record 25 / destination 690 file sent as HCPFAC", amu),
        ("PSL-GENASYNC-MEDIPRIMA", "ordinary_file_as_ecm"): envelope(
            "invalid: an ordinary file sent as ECM-HCPFAC", two, message_name="ECM-HCPFAC"),
        ("PSL-GENASYNC-OPERATION", "get"): envelope(
            "invalid: a get request is the gateway's own call, not a practice's", two,
            root="get"),
        ("PSL-BLOB-BASE64", "not_base64"): envelope(
            "invalid: Detail content is not base64", content="not*base64*at*all"),
        ("PSL-BLOB-DEFLATE", "zlib_header"): envelope(
            "invalid: zlib (not raw deflate) stream",
            content=base64.b64encode(zlib.compress(two.encode("ascii"), 9)).decode("ascii")),
        ("PSL-BLOB-SIZE", "deflate_bomb"): envelope(
            "invalid: 3 MiB inflated from a few KiB (cap: the document size limit)",
            content=base64.b64encode(deflate(b"0" * (3 * 1024 * 1024))).decode("ascii")),
        ("PSL-BLOB-CONTENTTYPE", "text_xml"): envelope(
            "invalid: ContentType text/xml for a flat file", two, content_type="text/xml"),
        ("PSL-BLOB-ENCODING", "gzip"): envelope(
            "invalid: ContentEncoding gzip", two, encoding="gzip",
            content=base64.b64encode(two.encode("ascii")).decode("ascii")),
        ("PSL-SCHEMA", "unexpected_element"): envelope(
            "invalid: an element the schema does not allow after Detail", two,
            extra="\n  <gen:Unexpected/>"),
    }
    files = {}
    for name, text in valid.items():
        files["valid/%s.xml" % name] = text
    for (code, name), text in invalid.items():
        files["invalid/%s/%s.xml" % (code, name)] = text
    files["sensitive_values.txt"] = (
        "# Every patient value in the corpus files: no problem message may contain one.\n"
        + "".join(v + "\n" for v in SENSITIVE))
    return {path: text.encode("ascii") for path, text in files.items()}


def listing(root):
    out = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root).replace(os.sep, "/")] = f.read()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(HERE, "efact"))
    ap.add_argument("--check", action="store_true",
                    help="regenerate in memory and diff against --out")
    args = ap.parse_args()
    expected = cases()
    if args.check:
        actual = listing(args.out) if os.path.isdir(args.out) else {}
        differ = sorted(p for p in set(expected) | set(actual)
                        if expected.get(p) != actual.get(p))
        for p in differ:
            print("differs: %s" % p)
        if differ:
            print("run conformance/generate_efact_corpus.py to regenerate")
            return 1
        print("%d files up to date in %s" % (len(expected), args.out))
        return 0
    if os.path.isdir(args.out):
        shutil.rmtree(args.out)
    for path, data in expected.items():
        full = os.path.join(args.out, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(data)
    print("wrote %d files to %s" % (len(expected), args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
