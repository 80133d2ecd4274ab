"""Writes loadgen mix folders (load-tests/README.md "The mix") from the shared samples.

A mix folder holds mix.json and one folder of request templates per kind. The templates are made
from the shared SYNTHETIC sample at run time (nothing from ../shared is copied into the
repository); loadgen fills their placeholders per request ({{PRACTICE}}, {{PATIENT}},
{{BAD_PATIENT}}, {{MUTUALITY}}, {{TODAY}}, {{STAMP}}, {{FIRST_OF_NEXT_MONTH}}, {{SEQ}}, {{RUN}},
{{B64:file}}, {{DEFLATE_B64:file}}).

Another kind joins the mix by a folder of templates and an entry in mix.json, e.g. the eFact claims
(genasync post on /v1/claims): claim/<name>.xml with {{DEFLATE_B64:<name>.efact}} for the blob.
"""
import base64
import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "conformance", "e2e"))
import harness  # noqa: E402


def enrolment_templates(shared, patient="{{PATIENT}}"):
    """(envelope template, detail template) of an unsigned MHM SendSubscriptionRequest, as
    harness.enrolment() builds it, with placeholders where it puts today's values."""
    with open(os.path.join(shared, harness.SAMPLE), encoding="utf-8") as f:
        envelope = f.read()
    m = re.search(r"(<mcp:Detail[^>]*>)([^<]*)(</mcp:Detail>)", envelope)
    detail = base64.b64decode(m.group(2)).decode("utf-8")
    detail = detail.replace("2025-02-01", "{{FIRST_OF_NEXT_MONTH}}").replace("20250102093000", "{{STAMP}}")
    detail = detail.replace("2025-01-02", "{{TODAY}}").replace(harness.PRACTICE_A, "{{PRACTICE}}")
    detail = detail.replace(">" + harness.SAMPLE_PATIENT + "<", ">" + patient + "<")
    envelope = envelope[: m.start(2)] + "{{B64:subscription.detail}}" + envelope[m.end(2):]
    envelope = re.sub(r"\s*<mcp:Xades>[^<]*</mcp:Xades>", "", envelope)
    envelope = envelope.replace("2025-01-02", "{{TODAY}}").replace(harness.PRACTICE_A, "{{PRACTICE}}")
    envelope = envelope.replace(">" + harness.SAMPLE_PATIENT + "<", ">" + patient + "<")
    envelope = envelope.replace(
        "<mc:Ssin>%s</mc:Ssin></mc:CareReceiver>" % patient,
        "<mc:Ssin>%s</mc:Ssin><mc:RegNrWithMut>%s</mc:RegNrWithMut><mc:Mutuality>{{MUTUALITY}}</mc:Mutuality>"
        "</mc:CareReceiver>" % (patient, patient))
    return envelope, detail


def write_mix(shared, folder, invalid_weight=5, valid_weight=95, pool=20000, practices=None):
    """Writes `folder`/mix.json with kinds `enrolment` (expects 202) and, when invalid_weight > 0,
    `enrolment-invalid` (a NISS with wrong check digits: expects 422). Returns mix.json's path."""
    kinds = []
    for name, weight, expect, patient in (("enrolment", valid_weight, 202, "{{PATIENT}}"),
                                          ("enrolment-invalid", invalid_weight, 422, "{{BAD_PATIENT}}")):
        if weight <= 0:
            continue
        envelope, detail = enrolment_templates(shared, patient)
        os.makedirs(os.path.join(folder, name), exist_ok=True)
        with open(os.path.join(folder, name, "subscription.xml"), "w", encoding="utf-8") as f:
            f.write(envelope)
        with open(os.path.join(folder, name, "subscription.detail"), "w", encoding="utf-8") as f:
            f.write(detail)
        kinds.append({"name": name, "path": "/v1/enrolments", "weight": weight, "expect": expect,
                      "templates": name})
    mix = {"kinds": kinds,
           "practices": practices or [harness.PRACTICE_A, harness.PRACTICE_B],
           "patients": {"pool": pool, "first_birth_date": "1950-01-01"},
           "mutualities": harness.UNIONS}
    path = os.path.join(folder, "mix.json")
    with open(path, "w") as f:
        json.dump(mix, f, indent=2)
    return path


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: mix.py SHARED_DIR OUT_FOLDER")
    print(write_mix(sys.argv[1], sys.argv[2]))
