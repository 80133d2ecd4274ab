#!/usr/bin/env python3
"""Generates the MediPrima / AMU conformance corpus under conformance/mediprima/.

Layout written (the folder is wiped and rewritten, output is deterministic):
  mediprima/valid/<op>_<name>.xml        must validate (kind "amu", flow "mediprima"); <op> is
                                         send, search, delete or consult
  mediprima/invalid/<code>/<name>.xml    must fail with at least the error <code> (one fault per file)
  mediprima/multi/<name>.xml + .expected must fail with exactly the error codes listed in .expected
  mediprima/sensitive_values.txt         every beneficiary SSIN used: no message may contain one

Every file is a MediPrima SOAP body payload: UMA v1 Send/Search/DeleteUrgentMedicalAidAttestation-
Request (urn:be:fgov:ehealth:mediprima:uma:protocol:v1) or consultation v2
ConsultCarmedInterventionRequest (urn:be:fgov:ehealth:mediprima:protocol:v2). All data is synthetic:
SSINs (NISS of both centuries, BIS with month +20/+40) and NIHIIs are invented with their check
digits computed here (DOMAIN.md §2). The business date is 2025-01-02 (the conformance test runs at
2025-01-02T10:00:00Z) and the authenticated physician is PHYSICIAN below (the test passes it to
MediPrimaCodec::Decode, so PSL-MEDIPRIMA-AUTHOR-MISMATCH is exercised).

Usage: generate_mediprima_corpus.py [--out DIR]   rewrite DIR (default: mediprima/ next to this)
       generate_mediprima_corpus.py --check       regenerate into a temporary folder and fail if it
                                                  differs from the committed corpus
Python 3 standard library only.
"""

import sys

import corpus_common
from corpus_common import nihii, niss

NS_UMA = "urn:be:fgov:ehealth:mediprima:uma:protocol:v1"
NS_CONSULT = "urn:be:fgov:ehealth:mediprima:protocol:v2"
NS_PROT = "urn:be:fgov:ehealth:commons:protocol:v2"
NS_CORE = "urn:be:fgov:ehealth:commons:core:v2"
PHYSICIAN_ID_TYPE = "urn:be:fgov:ehealth:1.0:physician:nihii-number"
ISSUE_INSTANT = "2025-01-02T09:30:00+01:00"

SENSITIVE = set()


# --- identifiers (DOMAIN.md §2) ---------------------------------------------------------------

def wrong_check(ssin):
    """The same SSIN with check digits that match neither century."""
    good = {ssin[9:]}
    body = int(ssin[:9])
    good.add("%02d" % (97 - (2_000_000_000 + body) % 97))
    cc = int(ssin[9:])
    while True:
        cc = cc % 97 + 1
        if "%02d" % cc not in good:
            return ssin[:9] + "%02d" % cc


PHYSICIAN = nihii(114787, "004")          # 11478761004, the authenticated GP
OTHER_PHYSICIAN = nihii(123456, "004")    # 12345625004
PHYSICIAN_MOD89 = nihii(114787, "004", mod=89)  # 11478723004, valid by mod 89 only
DENTIST = nihii(300000, "001")            # 30000021001
MEDICAL_HOUSE = nihii(812345, "000")      # 81234530000 (institution)

BIS = niss(85, 49, 30, 1)                 # 85493000163, BIS sex known (month 09 + 40)
BIS_SEX_UNKNOWN = niss(90, 21, 15, 42)    # month 01 + 20
BIS_DATE_UNKNOWN = niss(92, 40, 0, 7)     # BIS, month and day unknown (00 + 40, 00)
NISS_1985 = niss(85, 7, 30, 33)           # 85073003328
NISS_2017 = niss(17, 7, 30, 33, born_2000=True)  # 17073003384
for _v in (BIS, BIS_SEX_UNKNOWN, BIS_DATE_UNKNOWN, NISS_1985, NISS_2017):
    SENSITIVE.add(_v)

assert PHYSICIAN == "11478761004" and BIS == "85493000163" and NISS_2017 == "17073003384"


def sensitive(value):
    SENSITIVE.add(value)
    return value


# --- documents ---------------------------------------------------------------------------------

def header(comment):
    return '<?xml version="1.0" encoding="UTF-8"?>\n<!-- SYNTHETIC conformance case: %s -->\n' % comment


def uma(name, body, attrs=None, prefix_decls=True):
    attrs = {"Id": "_req-0001", "IssueInstant": ISSUE_INSTANT} if attrs is None else attrs
    decls = (' xmlns:uma="%s"\n    xmlns:prot="%s"\n    xmlns:core="%s"' % (NS_UMA, NS_PROT, NS_CORE)
             if prefix_decls else ' xmlns:uma="%s"' % NS_UMA)
    a = "".join(' %s="%s"' % (k, v) for k, v in attrs.items())
    return "<uma:%s%s\n   %s>\n%s</uma:%s>\n" % (name, decls, a, body, name)


def author(*parties):
    """protocol:Author with one core:HcParty per (id_type, value, name)."""
    out = "  <prot:Author>\n"
    for id_type, value, name in parties:
        out += "    <core:HcParty>\n"
        out += '      <core:Id Type="%s">%s</core:Id>\n' % (id_type, value)
        out += "      <core:FirstName>Synthetic</core:FirstName>\n"
        out += "      <core:Name>%s</core:Name>\n" % name
        out += "    </core:HcParty>\n"
    return out + "  </prot:Author>\n"


def physician(value=PHYSICIAN):
    return (PHYSICIAN_ID_TYPE, value, "Doctor")


def period(tag, start, end, indent="  "):
    out = "%s<%s>\n%s  <StartDate>%s</StartDate>\n" % (indent, tag, indent, start)
    if end is not None:
        out += "%s  <EndDate>%s</EndDate>\n" % (indent, end)
    return out + "%s</%s>\n" % (indent, tag)


def send(ssin=BIS, start="2025-01-02", end="2025-01-31", cover="DOCTOR", auth=None, attrs=None,
         extra=""):
    body = (auth if auth is not None else author(physician()))
    body += "  <BeneficiarySsin>%s</BeneficiarySsin>\n" % sensitive(ssin)
    body += period("ValidityPeriod", start, end)
    if cover is not None:
        body += "  <MedicalCover>%s</MedicalCover>\n" % cover
    return uma("SendUrgentMedicalAidAttestationRequest", body + extra, attrs)


def search(ssin=BIS, number="UMA-2025-000001", start=None, end=None, cover=None, extra=""):
    body = "  <Criteria>\n    <BeneficiarySsin>%s</BeneficiarySsin>\n" % sensitive(ssin)
    if number is not None:
        body += "    <AttestationNumber>%s</AttestationNumber>\n" % number
    if start is not None:
        body += period("Period", start, end, indent="    ")
        if cover is not None:
            body += "    <MedicalCover>%s</MedicalCover>\n" % cover
    body += extra + "  </Criteria>\n"
    return uma("SearchUrgentMedicalAidAttestationRequest", body)


def delete(ssin=BIS, number="UMA-2025-000001", auth=None):
    body = (auth if auth is not None else author(physician()))
    body += "  <BeneficiarySsin>%s</BeneficiarySsin>\n" % sensitive(ssin)
    if number is not None:
        body += "  <AttestationNumber>%s</AttestationNumber>\n" % number
    return uma("DeleteUrgentMedicalAidAttestationRequest", body)


def consult(ssin=BIS, reference="2025-01-02", start=None, end=None, ns=NS_CONSULT,
            attrs=' Id="_req-0002" IssueInstant="%s"' % ISSUE_INSTANT, ssin_tag="Ssin"):
    crit = "      <%s>%s</%s>\n" % (ssin_tag, sensitive(ssin), ssin_tag)
    if start is not None:
        crit += period("Period", start, end, indent="      ")
    if reference is not None:
        crit += "      <ReferenceDate>%s</ReferenceDate>\n" % reference
    return ('<mp:ConsultCarmedInterventionRequest xmlns:mp="%s"\n   %s>\n'
            "  <SelectionCriteria>\n    <BySsin>\n%s    </BySsin>\n  </SelectionCriteria>\n"
            "</mp:ConsultCarmedInterventionRequest>\n" % (ns, attrs, crit))


# --- cases -------------------------------------------------------------------------------------

def valid_cases():
    v = {}

    def add(name, comment, doc):
        v[name] = (header("valid. " + comment) + doc).encode("utf-8")

    add("send_bis", "attestation for a BIS holder (month +40)", send())
    add("send_bis_sex_unknown", "BIS with month +20 (sex unknown)", send(ssin=BIS_SEX_UNKNOWN))
    add("send_bis_date_unknown", "BIS whose month and day are unknown (00)",
        send(ssin=BIS_DATE_UNKNOWN))
    add("send_niss_1985", "NISS born before 2000", send(ssin=NISS_1985))
    add("send_niss_2017", "NISS born from 2000 (the 'prefix 2' check branch)", send(ssin=NISS_2017))
    add("send_open_ended", "ValidityPeriod without EndDate", send(end=None))
    add("send_one_day", "ValidityPeriod of one day", send(end="2025-01-02"))
    add("send_started_last_year", "care that started two months ago",
        send(start="2024-11-02", end="2025-01-31"))
    add("send_author_with_other_ids", "HcParty carries the physician NIHII and another Id type",
        send(auth=author(physician(), ("urn:be:fgov:ehealth:1.0:hospital:nihii-number",
                                       nihii(710000, "000"), "Hospital"))))
    add("send_without_id", "no request @Id (optional in the schema: the gateway assigns one)",
        send(attrs={"IssueInstant": ISSUE_INSTANT}))
    add("search_by_number", "search one attestation by its number", search())
    add("search_by_period", "search by period", search(number=None, start="2024-12-01",
                                                       end="2025-01-02"))
    add("search_by_period_and_cover", "search by period and medical cover",
        search(number=None, start="2024-12-01", end="2025-01-02", cover="DOCTOR"))
    add("search_open_period", "search from a date on", search(number=None, start="2024-12-01"))
    add("search_niss_2017", "search for a NISS born from 2000", search(ssin=NISS_2017))
    add("delete_bis", "delete an attestation", delete())
    add("delete_niss", "delete an attestation of a NISS holder", delete(ssin=NISS_1985))
    add("consult_reference_date", "medical cards valid on a date (as the shared sample)", consult())
    add("consult_period", "medical cards valid over a period",
        consult(reference=None, start="2024-12-01", end="2025-01-31"))
    add("consult_niss", "consultation for a NISS holder", consult(ssin=NISS_1985))
    add("consult_without_id", "no request @Id",
        consult(attrs=' IssueInstant="%s"' % ISSUE_INSTANT))
    add("consult_window_edges", "ReferenceDate 730 days ago, the oldest accepted",
        consult(reference="2023-01-03"))
    return v


def invalid_cases():
    c = {}

    def add(code, name, comment, doc):
        c[(code, name)] = (header("invalid, expect %s. %s" % (code, comment)) + doc).encode("utf-8")

    S = "PSL-MEDIPRIMA-"
    add(S + "SSIN", "send_ssin_ten_digits", "BeneficiarySsin has 10 digits",
        send(ssin=sensitive(BIS[:10])))
    add(S + "SSIN", "consult_ssin_letters", "Ssin holds a letter", consult(ssin=sensitive("8549300016A")))
    add(S + "SSIN", "delete_ssin_month_13", "month 13 is neither a birth month nor a BIS month",
        delete(ssin=sensitive(niss(85, 13, 30, 1))))
    add(S + "SSIN", "search_ssin_sequence_000", "sequence 000 is never issued",
        search(ssin=sensitive(niss(85, 7, 30, 0))))
    add(S + "SSIN-CHECK", "send_bis_check", "BIS check digits wrong", send(ssin=sensitive(wrong_check(BIS))))
    add(S + "SSIN-CHECK", "search_check", "check digits wrong",
        search(ssin=sensitive(wrong_check(NISS_1985))))
    add(S + "SSIN-CHECK", "consult_check", "check digits wrong",
        consult(ssin=sensitive(wrong_check(BIS))))
    add(S + "SSIN-CHECK", "delete_niss_2017_check", "NISS born from 2000 with wrong check digits",
        delete(ssin=sensitive(wrong_check(NISS_2017))))
    add(S + "AUTHOR-MISSING", "send_author_ssin_only", "the HcParty has no physician NIHII Id",
        send(auth=author(("urn:be:fgov:ehealth:1.0:hospital:nihii-number", nihii(710000, "000"),
                          "Hospital"))))
    add(S + "AUTHOR-MISSING", "delete_author_nurse_type", "the Id type is a nurse's NIHII",
        delete(auth=author(("urn:be:fgov:ehealth:1.0:nurse:nihii-number", PHYSICIAN, "Nurse"))))
    add(S + "AUTHOR-NIHII", "send_author_check", "author NIHII check digits wrong",
        send(auth=author(physician(PHYSICIAN[:6] + "62" + PHYSICIAN[8:]))))
    add(S + "AUTHOR-NIHII", "delete_author_eight_digits", "author NIHII in its 8-digit form",
        delete(auth=author(physician(PHYSICIAN[:8]))))
    add(S + "AUTHOR-NOT-PHYSICIAN", "send_author_dentist", "a dentist's NIHII (30...)",
        send(auth=author(physician(DENTIST))))
    add(S + "AUTHOR-NOT-PHYSICIAN", "delete_author_medical_house", "a medical house's NIHII (8...)",
        delete(auth=author(physician(MEDICAL_HOUSE))))
    add(S + "AUTHOR-AMBIGUOUS", "send_two_physicians", "two different physician NIHIIs",
        send(auth=author(physician(), physician(OTHER_PHYSICIAN))))
    add(S + "AUTHOR-MISMATCH", "send_other_physician",
        "the author is a valid physician, not the authenticated one",
        send(auth=author(physician(OTHER_PHYSICIAN))))
    add(S + "AUTHOR-MISMATCH", "delete_other_physician",
        "the author is a valid physician, not the authenticated one",
        delete(auth=author(physician(OTHER_PHYSICIAN))))
    add(S + "PERIOD-ORDER", "send_end_before_start", "EndDate before StartDate",
        send(start="2025-01-02", end="2025-01-01"))
    add(S + "PERIOD-ORDER", "search_end_before_start", "Period EndDate before StartDate",
        search(number=None, start="2025-01-02", end="2024-12-01"))
    add(S + "PERIOD-ORDER", "consult_end_before_start", "Period EndDate before StartDate",
        consult(reference=None, start="2025-01-02", end="2024-12-01"))
    add(S + "PERIOD-LENGTH", "send_period_over_a_year", "ValidityPeriod of 367 days",
        send(start="2025-01-02", end="2026-01-04"))
    add(S + "PERIOD-LENGTH", "consult_period_two_years", "Period of two years",
        consult(reference=None, start="2023-06-01", end="2025-06-01"))
    add(S + "DATE-PAST", "send_start_three_years_ago", "StartDate more than 730 days ago",
        send(start="2021-12-01", end="2021-12-31"))
    add(S + "DATE-PAST", "consult_reference_731_days", "ReferenceDate 731 days ago",
        consult(reference="2023-01-02"))
    add(S + "DATE-PAST", "search_period_start_old", "Period StartDate more than 730 days ago",
        search(number=None, start="2022-01-01", end="2022-06-30"))
    add(S + "DATE-FUTURE", "send_start_next_quarter", "StartDate more than 31 days ahead",
        send(start="2025-04-01", end="2025-04-30"))
    add(S + "DATE-FUTURE", "consult_reference_32_days", "ReferenceDate 32 days ahead",
        consult(reference="2025-02-03"))
    add(S + "ATTESTATION-NUMBER", "delete_number_with_space", "AttestationNumber holds a space",
        delete(number="UMA 2025 1"))
    add(S + "ATTESTATION-NUMBER", "delete_number_empty", "AttestationNumber is empty",
        delete(number=""))
    add(S + "ATTESTATION-NUMBER", "search_number_too_long", "AttestationNumber of 65 characters",
        search(number="9" * 65))
    add(S + "COVER", "send_cover_blank", "MedicalCover holds only spaces", send(cover="  "))
    add(S + "COVER", "search_cover_empty", "Period search with an empty MedicalCover",
        search(number=None, start="2024-12-01", end="2025-01-02", cover=""))
    add(S + "ISSUE-INSTANT", "send_issued_tomorrow_plus", "IssueInstant two days ahead",
        send(attrs={"Id": "_req-0001", "IssueInstant": "2025-01-04T09:30:00Z"}))
    add(S + "ISSUE-INSTANT", "consult_issued_next_year", "IssueInstant a year ahead",
        consult(attrs=' Id="_req-0002" IssueInstant="2026-01-02T09:30:00+01:00"'))
    add("PSL-SCHEMA", "send_without_cover", "MedicalCover is required", send(cover=None))
    add("PSL-SCHEMA", "send_impossible_date", "EndDate 2025-02-30 is not an xs:date",
        send(end="2025-02-30"))
    add("PSL-SCHEMA", "send_without_issue_instant", "IssueInstant is required",
        send(attrs={"Id": "_req-0001"}))
    add("PSL-SCHEMA", "send_extra_element", "an element the schema does not know",
        send(extra="  <Comment>urgent</Comment>\n"))
    add("PSL-SCHEMA", "search_number_and_period", "AttestationNumber and Period are a choice",
        search(extra=period("Period", "2024-12-01", "2025-01-02", indent="    ")))
    add("PSL-SCHEMA", "delete_without_author", "Delete needs an Author", delete(auth=""))
    add("PSL-SCHEMA", "consult_qualified_child", "children are unqualified (elementFormDefault)",
        consult(ssin_tag="mp:Ssin"))
    add("PSL-SCHEMA", "consult_reference_and_period", "Period and ReferenceDate are a choice",
        consult(start="2024-12-01", end="2025-01-02"))
    add("PSL-FLOW-UNKNOWN", "consult_v1_namespace", "consultation v1 is not accepted (v2 only)",
        consult(ns="urn:be:fgov:ehealth:mediprima:protocol:v1"))
    add("PSL-FLOW-UNKNOWN", "send_response_as_request", "an answer element sent as a request",
        uma("SendUrgentMedicalAidAttestationResponse", "  <x/>\n"))
    add("PSL-XML-DOCTYPE", "send_xxe", "a DOCTYPE with an external entity",
        '<!DOCTYPE uma:SendUrgentMedicalAidAttestationRequest [<!ENTITY x SYSTEM '
        '"file:///etc/passwd">]>\n' + send(cover="&x;"))
    add("PSL-XML-SYNTAX", "send_truncated", "the document stops mid-element", send()[:400])
    add("PSL-XML-DEPTH", "send_deep_nesting", "nesting beyond the depth limit",
        send(extra="  " + "<a>" * 80 + "</a>" * 80 + "\n"))
    return c


def multi_cases():
    m = {}

    def add(name, comment, codes, doc):
        m[name] = ((header("invalid, expect exactly %s. %s" % (", ".join(sorted(codes)), comment))
                    + doc).encode("utf-8"), codes)

    S = "PSL-MEDIPRIMA-"
    add("send_everything_wrong", "SSIN, author and period all break a rule",
        [S + "SSIN-CHECK", S + "AUTHOR-NIHII", S + "PERIOD-ORDER"],
        send(ssin=sensitive(wrong_check(BIS)),
             auth=author(physician(PHYSICIAN[:6] + "62" + PHYSICIAN[8:])),
             start="2025-01-02", end="2025-01-01"))
    add("send_mod89_not_authenticated", "a mod-89 author (warning) who is not the authenticated "
        "physician (error)", [S + "AUTHOR-MISMATCH"], send(auth=author(physician(PHYSICIAN_MOD89))))
    add("consult_ssin_and_future", "bad SSIN and a reference date too far ahead",
        [S + "SSIN", S + "DATE-FUTURE"], consult(ssin=sensitive("8549300"), reference="2025-06-01"))
    add("delete_number_and_dentist", "a dentist deletes with a malformed number",
        [S + "ATTESTATION-NUMBER", S + "AUTHOR-NOT-PHYSICIAN"],
        delete(number="#1", auth=author(physician(DENTIST))))
    add("search_schema_and_rule", "schema error (unknown element) beside a rule (SSIN check)",
        ["PSL-SCHEMA", S + "SSIN-CHECK"],
        search(ssin=sensitive(wrong_check(NISS_1985)), extra="    <Comment>x</Comment>\n"))
    return m


# --- writing ---------------------------------------------------------------------------------

README_HINT = "Generated by conformance/generate_mediprima_corpus.py; do not edit by hand.\n"


def write(out):
    return corpus_common.write_corpus(
        out, valid_cases(), invalid_cases(), multi_cases(),
        "# " + README_HINT + "# Beneficiary SSINs used in the corpus: no validation message may "
        "contain one.\n", SENSITIVE)

def main():
    return corpus_common.main(__doc__, "mediprima", write, "generate_mediprima_corpus.py")


if __name__ == "__main__":
    sys.exit(main())
