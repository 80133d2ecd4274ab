#!/usr/bin/env python3
"""Generates the MHM (medical-house membership) conformance corpus under conformance/mhm/.

Layout written (the folder is wiped and rewritten, output is deterministic):
  mhm/valid/<name>.xml              must validate (kind "enrolment")
  mhm/invalid/<code>/<name>.xml     must fail with at least the error <code> (one fault per file)
  mhm/multi/<name>.xml + .expected  must fail with exactly the error codes listed in .expected
  mhm/sensitive_values.txt          every patient value used (NISS, names, registration numbers):
                                    no validation message may contain any of them

Every document is synthetic: invented identifiers whose check digits are computed here (DOMAIN.md
§2), and the fixed business date 2025-01-02 (the conformance test sets its clock to
2025-01-02T10:00:00Z). Requests are unsigned (no <Xades>), as practices send them.

Usage: generate_mhm_corpus.py [--out DIR]   rewrite DIR (default: mhm/ next to this script)
       generate_mhm_corpus.py --check       regenerate into a temporary folder and fail if it
                                            differs from the committed corpus
Python 3 standard library only.
"""

import base64
import datetime
import sys
import uuid
import zlib

import corpus_common
from corpus_common import bad_nihii, bad_niss, nihii, niss

TODAY = datetime.date(2025, 1, 2)
REQUEST_TIME = "09:30:00"

NS_MHM = "urn:be:fgov:ehealth:mycarenet:medicalhousemembership:protocol:v1"
NS_MCP = "urn:be:fgov:ehealth:mycarenet:commons:protocol:v3"
NS_MC = "urn:be:fgov:ehealth:mycarenet:commons:core:v3"
NS_CORE = "http://www.ehealth.fgov.be/messageservices/core/v1"
NS_KMEHR = "http://www.ehealth.fgov.be/standards/kmehr/schema/v1"
NS_PROTO = "http://www.ehealth.fgov.be/messageservices/protocol/v1"
NS_ID = "http://www.ehealth.fgov.be/standards/kmehr/id/v1"

OPERATIONS = {
    "send": ("SendSubscriptionRequest", "maa"),
    "cancel": ("CancelSubscriptionRequest", "maacancellation"),
    "closure": ("NotifySubscriptionClosureRequest", "maaclosure"),
}

# Values that identify a patient; collected for sensitive_values.txt.
SENSITIVE = set()


# --- identifiers (DOMAIN.md §2) ---------------------------------------------------------------

MH_SUFFIXES = ["111", "110", "100", "101", "001", "010", "011"]
HOUSES = [nihii(b, s) for b, s in zip(
    ["812345", "823456", "834567", "845678", "856789", "867890", "878901"], MH_SUFFIXES)]
MH = HOUSES[0]
MH_OTHER = HOUSES[1]
GP = nihii("198765", "004")  # a valid NIHII that is not a medical house


class Patient:
    def __init__(self, first, family, sex, niss_value=None, mutuality=None, regnr=None):
        self.first = first if isinstance(first, list) else [first]
        self.family = family
        self.sex = sex
        self.niss = niss_value
        self.mutuality = mutuality
        self.regnr = regnr
        for v in self.first + [family, niss_value, regnr]:
            if v:
                SENSITIVE.add(v)


P_1985 = Patient("Zephyrine", "Synthmans", "female", niss(85, 7, 14, 124))
P_1962 = Patient("Aurelien", "Fictivaert", "male", niss(62, 11, 3, 37))
P_2017 = Patient("Maelys", "Exemplaar", "female", niss(17, 3, 30, 86, born_2000=True))
P_2000 = Patient("Corentin", "Testhove", "male", niss(0, 1, 1, 11, born_2000=True))
P_BIS20 = Patient("Ysaline", "Nepperdam", "unknown", niss(91, 5 + 20, 12, 1))
P_BIS40 = Patient("Baptistin", "Proefkens", "male", niss(78, 9 + 40, 30, 3))
P_BIS40_2000 = Patient("Heloise", "Voorbeeldt", "female", niss(3, 2 + 40, 17, 2, born_2000=True))
P_MUT = Patient("Quirijn", "Mockelaere", "male", None, "306", "93073012345")
P_BOTH = Patient("Leontine", "Dummereau", "female", niss(70, 12, 24, 66), "319", "70122406612")
P_ACCENT = Patient(["Zoë", "Anaïs"], "Lefèvre-Dubœuf", "female", niss(99, 2, 28, 222))
P_BIS_UNKNOWN_DATE = Patient("Eulalie", "Ongekendt", "unknown", niss(85, 0 + 20, 0, 5))


def niss_with_check_97(yy, mm, dd):
    """A NISS (born before 2000) whose check digits are 97: YYMMDDSSS is a multiple of 97."""
    for seq in range(1, 998):
        value = niss(yy, mm, dd, seq)
        if value.endswith("97"):
            return value
    raise AssertionError("no sequence number gives check digits 97")


P_CC97 = Patient("Philomene", "Negenennegentig", "female", niss_with_check_97(80, 1, 15))
P_OTHER = Patient("Victorin", "Onbestaens", "male", niss(88, 8, 8, 881))


# --- kmehr SendTransactionRequest (the Detail payload) ---------------------------------------

KMEHR_PREFIXES = {
    "sample": {"core": "ns2", "kmehr": "ns3", "proto": "ns6", "id": ""},
    "named": {"core": "core", "kmehr": "kmehr", "proto": "msg", "id": "kid"},
    "default_kmehr": {"core": "c", "kmehr": "", "proto": "p", "id": "i"},
}


def item(name, content_xml):
    return (name, content_xml)


def it_agreementtype(value="packagemedicalhouse", content=True):
    c = '<K:content><K:cd S="LOCAL" SV="1.1" SL="MAA-TYPE">%s</K:cd></K:content>' % value
    return item("agreementtype", c if content else "")


def it_date(name, value):
    return item(name, "<K:content><K:date>%s</K:date></K:content>" % value if value else "")


def it_bool(name, value):
    return item(name, "<K:content><K:boolean>%s</K:boolean></K:content>" % value
                if value is not None else "")


def it_decisionreference(value="300123456789"):
    c = ('<K:content><K:id S="LOCAL" SV="1.0" SL="IOreferencesystemname">%s</K:id></K:content>'
         % value)
    return item("decisionreference", c if value is not None else "")


def it_closurejustification(decision="patient", justification="patientchoice"):
    cds = ""
    if decision is not None:
        cds += '<K:cd S="LOCAL" SV="1.0" SL="MAA-CLOSUREDECISION">%s</K:cd>' % decision
    if justification is not None:
        cds += '<K:cd S="LOCAL" SV="1.0" SL="MAA-CLOSUREJUSTIFICATION">%s</K:cd>' % justification
    return item("closurejustification", "<K:content>%s</K:content>" % cds if cds else "")


def it_documentidentity(value="eid", extra=False):
    if value is None:
        return item("documentidentity", "")
    cds = '<K:cd S="LOCAL" SV="1.0" SL="SIGNATURE-TYPE">%s</K:cd>' % value
    if extra:
        cds += '<K:cd S="LOCAL" SV="1.0" SL="SIGNATURE-DEVICE">cardreader</K:cd>'
    return item("documentidentity", "<K:content>%s</K:content>" % cds)


def default_items(tx):
    if tx == "maa":
        return [it_agreementtype(), it_date("agreementstartdate", "2025-02-01"),
                it_bool("istrialperiod", "false"), it_documentidentity()]
    if tx == "maacancellation":
        return [it_agreementtype(), it_decisionreference()]
    return [it_agreementtype(), it_decisionreference(), it_date("agreementenddate", "2025-01-31"),
            it_closurejustification()]


def hcparty(nihii_value, name="Maison medicale Synthetique"):
    idx = ('<K:id S="ID-HCPARTY" SV="1.0">%s</K:id>' % nihii_value) if nihii_value else ""
    return ('<K:hcparty>%s<K:cd S="CD-HCPARTY" SV="1.15">orgprimaryhealthcarecenter</K:cd>'
            "<K:name>%s</K:name></K:hcparty>" % (idx, name))


def patient_xml(p, membership=None, local_id=True, extra=""):
    """membership: None = from the patient when it has no NISS, else (mutuality, regnr)."""
    out = "<K:patient>\n"
    if p.niss:
        out += '          <K:id S="ID-PATIENT" SV="1.0">%s</K:id>\n' % p.niss
    elif local_id:
        # kmehr requires a patient id: a practice-local file number, not a NISS.
        out += '          <K:id S="LOCAL" SV="1.0" SL="MH-PATIENTFILE">F-0042</K:id>\n'
    for f in p.first:
        out += "          <K:firstname>%s</K:firstname>\n" % f
    if p.family is not None:
        out += "          <K:familyname>%s</K:familyname>\n" % p.family
    if p.sex is not None:
        out += '          <K:sex><K:cd S="CD-SEX" SV="1.1">%s</K:cd></K:sex>\n' % p.sex
    if membership is None and not p.niss and p.mutuality:
        membership = (p.mutuality, p.regnr)
    if membership:
        mut, reg = membership
        out += "          <K:insurancymembership>"
        if mut is not None:
            out += '<K:id S="ID-INSURANCE" SV="1.0">%s</K:id>' % mut
        if reg is not None:
            out += "<K:membership>%s</K:membership>" % reg
        out += "</K:insurancymembership>\n"
    out += extra
    out += "        </K:patient>"
    return out


def kmehr(op="send", patient=P_1985, house=MH, **kw):
    """Returns the kmehr SendTransactionRequest as str. Keyword overrides name the element."""
    tx_default = OPERATIONS[op][1]
    o = dict(
        prefixes="sample", request_author=house, request_date=TODAY.isoformat(),
        request_id=None, standard="20181201", header_id="1", header_date=None, sender=house,
        recipient="mycarenet", folders=1, folder_id="1", tx_id="1", tx_cd=tx_default,
        tx_date=None, tx_author=house, items=None, membership=None, patient_extra="",
        leading="", body_extra="", local_id=True,
    )
    for k in kw:
        if k not in o:
            raise KeyError(k)
    o.update(kw)
    if o["request_id"] is None:
        o["request_id"] = "%s.%s%s" % (o["request_author"] or house,
                                       o["request_date"].replace("-", ""),
                                       REQUEST_TIME.replace(":", ""))
    header_date = o["header_date"] or o["request_date"]
    tx_date = o["tx_date"] or TODAY.isoformat()
    items = o["items"] if o["items"] is not None else default_items(tx_default)

    item_xml = ""
    for n, (name, content) in enumerate(items, 1):
        item_xml += ('        <K:item>\n          <K:id S="ID-KMEHR" SV="1.0">%d</K:id>\n'
                     '          <K:cd S="CD-ITEM-MYCARENET" SV="1.6">%s</K:cd>\n'
                     "          %s\n        </K:item>\n" % (n, name, content))
    folder = """    <K:folder>
      <K:id S="ID-KMEHR" SV="1.0">%s</K:id>
      %s
      <K:transaction>
        <K:id S="ID-KMEHR" SV="1.0">%s</K:id>
        <K:cd S="CD-TRANSACTION-MYCARENET" SV="1.5">%s</K:cd>
        <K:date>%s</K:date>
        <K:time>%s</K:time>
        <K:author>%s</K:author>
        <K:iscomplete>true</K:iscomplete>
        <K:isvalidated>true</K:isvalidated>
%s      </K:transaction>
    </K:folder>
""" % (o["folder_id"], patient_xml(patient, o["membership"], o["local_id"], o["patient_extra"]),
       o["tx_id"], o["tx_cd"], tx_date, REQUEST_TIME, hcparty(o["tx_author"]), item_xml)
    folders = folder
    for i in range(2, o["folders"] + 1):
        folders += folder.replace('<K:id S="ID-KMEHR" SV="1.0">%s</K:id>' % o["folder_id"],
                                  '<K:id S="ID-KMEHR" SV="1.0">%d</K:id>' % i, 1)
    recipient = "<K:name>%s</K:name>" % o["recipient"] if o["recipient"] is not None else ""
    request_id = ('<C:id S="ID-KMEHR" SV="1.0">%s</C:id>' % o["request_id"]
                  if o["request_id"] != "" else "")
    doc = """<P:SendTransactionRequest %%NS%% messageProtocoleSchemaVersion="1.27">
  <C:request>
    %s
    <C:author>%s</C:author>
    <C:date>%s</C:date>
    <C:time>%s</C:time>
  </C:request>
  <C:kmehrmessage>
    <K:header>
      <K:standard><K:cd S="CD-STANDARD" SV="1.28">%s</K:cd></K:standard>
      <K:id S="ID-KMEHR" SV="1.0">%s</K:id>
      <K:date>%s</K:date>
      <K:time>%s</K:time>
      <K:sender>%s</K:sender>
      <K:recipient><K:hcparty><K:cd S="CD-HCPARTY" SV="1.15">application</K:cd>%s</K:hcparty></K:recipient>
    </K:header>
%s  </C:kmehrmessage>%s
</P:SendTransactionRequest>
""" % (request_id, hcparty(o["request_author"]), o["request_date"], REQUEST_TIME, o["standard"],
       o["header_id"], header_date, REQUEST_TIME, hcparty(o["sender"]), recipient, folders,
       o["body_extra"])
    pf = KMEHR_PREFIXES[o["prefixes"]]
    decls = []
    for key, uri in (("id", NS_ID), ("core", NS_CORE), ("kmehr", NS_KMEHR), ("proto", NS_PROTO)):
        decls.append('xmlns%s="%s"' % (":" + pf[key] if pf[key] else "", uri))
    doc = doc.replace("%NS%", "\n    ".join(decls))
    for marker, key in (("K:", "kmehr"), ("C:", "core"), ("P:", "proto")):
        doc = doc.replace("<" + marker, "<" + (pf[key] + ":" if pf[key] else ""))
        doc = doc.replace("</" + marker, "</" + (pf[key] + ":" if pf[key] else ""))
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + o["leading"] + doc


# --- MHM envelope ----------------------------------------------------------------------------

ENV_PREFIXES = {
    "sample": {"mhm": "mhm", "mcp": "mcp", "mc": "mc"},
    "default_root": {"mhm": "", "mcp": "p", "mc": "c"},
    "short": {"mhm": "m", "mcp": "pr", "mc": "co"},
}


def raw_deflate(data, level=9):
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def stable_uuid(name, salt):
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "passerelle-mhm-corpus:%s:%s" % (name, salt)))


def envelope(name, comment, op="send", detail=None, **kw):
    """Returns the envelope bytes. `detail` is the kmehr str (default: kmehr(op))."""
    o = dict(
        prefixes="sample", root=None, root_ns=NS_MHM, quality="medicalhouse", careprovider=MH,
        routing="ssin", ssin=None, mutuality=None, regnr=None, content_type="text/xml",
        encoding="none", detail_b64=None, wrap_b64=False, crlf=False, is_test="true",
        commoninput=True, leading="", declaration=True, common_extra="", reference_date=None,
        patient=P_1985,
    )
    for k in kw:
        if k not in o:
            raise KeyError(k)
    o.update(kw)
    if detail is None:
        detail = kmehr(op, patient=o["patient"])
    if o["crlf"]:
        detail = detail.replace("\n", "\r\n")
    raw = detail.encode("utf-8") if isinstance(detail, str) else detail
    if o["detail_b64"] is not None:
        b64 = o["detail_b64"]
    else:
        payload = raw if o["encoding"] == "none" else raw_deflate(raw)
        b64 = base64.b64encode(payload).decode("ascii")
        if o["wrap_b64"]:
            b64 = "\n" + "\n".join(b64[i:i + 76] for i in range(0, len(b64), 76)) + "\n  "
    p = o["patient"]
    ssin = o["ssin"] if o["ssin"] is not None else p.niss
    mut = o["mutuality"] if o["mutuality"] is not None else p.mutuality
    reg = o["regnr"] if o["regnr"] is not None else p.regnr
    if o["routing"] is None:
        routing = ""
    else:
        parts = ""
        if "ssin" in o["routing"] and ssin:
            parts += "<D:Ssin>%s</D:Ssin>" % ssin
        if "mut" in o["routing"]:
            if reg:
                parts += "<D:RegNrWithMut>%s</D:RegNrWithMut>" % reg
            if mut:
                parts += "<D:Mutuality>%s</D:Mutuality>" % mut
        routing = ("  <R:Routing>\n    <D:CareReceiver>%s</D:CareReceiver>\n"
                   "    <D:ReferenceDate>%s</D:ReferenceDate>\n  </R:Routing>\n"
                   % (parts, o["reference_date"] or TODAY.isoformat()))
    enc_attr = ' ContentEncoding="%s"' % o["encoding"] if o["encoding"] is not None else ""
    common = ""
    if o["commoninput"]:
        common = """  <R:CommonInput>
    <D:Request><D:IsTest>%s</D:IsTest></D:Request>
    <D:Origin>
      <D:Package>
        <D:Name>PasserelleConformance</D:Name>
        <D:License><D:Username>CONFORMANCE-USER</D:Username><D:Password>CONFORMANCE-PASSWORD</D:Password></D:License>
      </D:Package>
      <D:CareProvider>
        <D:Nihii><D:Quality>%s</D:Quality><D:Value>%s</D:Value></D:Nihii>
      </D:CareProvider>
    </D:Origin>%s
    <D:InputReference>20250102093000001</D:InputReference>
  </R:CommonInput>
""" % (o["is_test"], o["quality"], o["careprovider"], o["common_extra"])
    root = o["root"] or OPERATIONS[op][0]
    doc = """<M:%s %%NS%%
    Id="_%s" IssueInstant="2025-01-02T09:30:00+01:00">
%s%s  <R:Detail ContentType="%s"%s Id="_%s">%s</R:Detail>
</M:%s>
""" % (root, stable_uuid(name, "envelope"), common, routing, o["content_type"], enc_attr,
       stable_uuid(name, "detail"), b64, root)
    pf = ENV_PREFIXES[o["prefixes"]]
    decls = []
    for key, uri in (("mhm", o["root_ns"]), ("mcp", NS_MCP), ("mc", NS_MC)):
        decls.append('xmlns%s="%s"' % (":" + pf[key] if pf[key] else "", uri))
    doc = doc.replace("%NS%", "\n    ".join(decls))
    for marker, key in (("M:", "mhm"), ("R:", "mcp"), ("D:", "mc")):
        doc = doc.replace("<" + marker, "<" + (pf[key] + ":" if pf[key] else ""))
        doc = doc.replace("</" + marker, "</" + (pf[key] + ":" if pf[key] else ""))
    assert "--" not in comment, comment
    head = ('<?xml version="1.0" encoding="UTF-8"?>\n' if o["declaration"] else "")
    text = head + "<!-- SYNTHETIC conformance case: %s -->\n" % comment + o["leading"] + doc
    if o["crlf"]:
        text = text.replace("\n", "\r\n")
    return text.encode("utf-8")


# --- the cases -------------------------------------------------------------------------------

def valid_cases():
    v = {}

    def add(name, comment, **kw):
        assert name not in v, name
        v[name] = envelope(name, "valid. " + comment, **kw)

    add("subscription_basic", "subscription, NISS born 1985, routed by Ssin, encoding none")
    add("subscription_male_born_1962", "subscription, male patient born 1962",
        patient=P_1962, detail=kmehr(patient=P_1962))
    add("subscription_born_after_2000", "subscription, NISS born 2017 (2000 check branch)",
        patient=P_2017, detail=kmehr(patient=P_2017))
    add("subscription_born_2000_01_01", "subscription, NISS born on 2000-01-01",
        patient=P_2000, detail=kmehr(patient=P_2000))
    add("subscription_bis_plus20", "subscription, BIS number with month + 20, sex unknown",
        patient=P_BIS20, detail=kmehr(patient=P_BIS20))
    add("subscription_bis_plus40", "subscription, BIS number with month + 40",
        patient=P_BIS40, detail=kmehr(patient=P_BIS40))
    add("subscription_bis_plus40_born_after_2000", "subscription, BIS + 40 born 2003",
        patient=P_BIS40_2000, detail=kmehr(patient=P_BIS40_2000))
    add("subscription_routing_mutuality", "subscription routed by Mutuality and RegNrWithMut; "
        "the kmehr patient has insurancymembership and no NISS",
        patient=P_MUT, routing="mut", detail=kmehr(patient=P_MUT))
    add("subscription_routing_ssin_and_mutuality", "subscription routed by Ssin, RegNrWithMut "
        "and Mutuality; the kmehr patient has a NISS and no insurancymembership",
        patient=P_BOTH, routing="ssin+mut", detail=kmehr(patient=P_BOTH))
    add("subscription_deflate", "subscription, ContentEncoding deflate (raw RFC 1951)",
        encoding="deflate")
    add("subscription_encoding_absent", "subscription, no ContentEncoding attribute: the schema "
        "default is deflate, so the content is deflated", encoding=None)
    add("subscription_trial_period_true", "subscription with istrialperiod true",
        detail=kmehr(items=[it_agreementtype(), it_date("agreementstartdate", "2025-02-01"),
                            it_bool("istrialperiod", "true"), it_documentidentity()]))
    add("subscription_start_today", "subscription starting today",
        detail=kmehr(items=[it_agreementtype(), it_date("agreementstartdate", "2025-01-02"),
                            it_bool("istrialperiod", "false"), it_documentidentity()]))
    add("subscription_migration_start_1900", "subscription recovering a migrated subscription: "
        "start 01/01/1900 with istrialperiod false (257 is decided by the insurer)",
        detail=kmehr(items=[it_agreementtype(), it_date("agreementstartdate", "1900-01-01"),
                            it_bool("istrialperiod", "false"), it_documentidentity()]))
    for i, house in enumerate(HOUSES[1:], 1):
        add("subscription_medical_house_suffix_%s" % house[-3:],
            "subscription from a medical house whose NIHII ends with %s" % house[-3:],
            careprovider=house, detail=kmehr(house=house))
    for std in ["20181201", "20190301", "20190901", "20200301", "20200901", "20210120",
                "20220401", "20240801"]:
        add("subscription_standard_%s" % std, "subscription declaring CD-STANDARD %s" % std,
            detail=kmehr(standard=std))
    add("subscription_prefixes_named", "kmehr prefixes core/kmehr/msg and envelope prefixes m/pr/co",
        prefixes="short", detail=kmehr(prefixes="named"))
    add("subscription_prefixes_default_namespaces", "envelope root and kmehr elements in the "
        "default namespace", prefixes="default_root", detail=kmehr(prefixes="default_kmehr"))
    add("subscription_crlf", "subscription with CRLF line endings in envelope and detail",
        crlf=True)
    add("subscription_crlf_deflate", "CRLF line endings, deflated detail", crlf=True,
        encoding="deflate")
    add("subscription_base64_wrapped", "base64 content wrapped at 76 characters", wrap_b64=True)
    add("subscription_no_xml_declaration", "envelope without XML declaration", declaration=False)
    add("subscription_is_test_false", "production request (IsTest false)", is_test="false")
    add("subscription_accented_names", "two first names with non-ASCII characters",
        patient=P_ACCENT, detail=kmehr(patient=P_ACCENT))

    add("subscription_bis_unknown_birth_date", "subscription, BIS number whose birth month and "
        "day are unknown (00, month + 20)", patient=P_BIS_UNKNOWN_DATE,
        detail=kmehr(patient=P_BIS_UNKNOWN_DATE))
    add("subscription_niss_check_digits_97", "subscription, NISS whose check digits are 97 "
        "(remainder 0)", patient=P_CC97, detail=kmehr(patient=P_CC97))
    add("subscription_medical_house_padded_000", "subscription from a medical house NIHII padded "
        "with 000 (8-digit institution number, as the shared sample)",
        careprovider=nihii("889012", "000"), detail=kmehr(house=nihii("889012", "000")))

    add("cancellation_basic", "cancellation with decisionreference", op="cancel")
    add("cancellation_deflate", "cancellation, deflated detail", op="cancel", encoding="deflate")
    add("cancellation_routing_mutuality", "cancellation routed by mutuality",
        op="cancel", patient=P_MUT, routing="mut", detail=kmehr("cancel", patient=P_MUT))
    add("cancellation_bis", "cancellation for a BIS patient", op="cancel", patient=P_BIS40,
        detail=kmehr("cancel", patient=P_BIS40))
    add("cancellation_prefixes_named", "cancellation with other prefixes", op="cancel",
        prefixes="short", detail=kmehr("cancel", prefixes="named"))

    add("closure_basic", "closure at the end of this month", op="closure")
    add("closure_end_today", "closure ending today (not in the past)", op="closure",
        detail=kmehr("closure", items=[
            it_agreementtype(), it_decisionreference(), it_date("agreementenddate", "2025-01-02"),
            it_closurejustification()]))
    add("closure_end_last_allowed_day", "closure ending 2025-04-30, the last day of the current "
        "month + 3 months", op="closure",
        detail=kmehr("closure", items=[
            it_agreementtype(), it_decisionreference(), it_date("agreementenddate", "2025-04-30"),
            it_closurejustification("medicalhouse", "nonrespectofagreement")]))
    add("closure_deflate", "closure, deflated detail", op="closure", encoding="deflate")
    add("closure_born_after_2000", "closure for a patient born 2017", op="closure",
        patient=P_2017, detail=kmehr("closure", patient=P_2017))
    add("closure_routing_ssin_and_mutuality", "closure routed by Ssin and mutuality",
        op="closure", patient=P_BOTH, routing="ssin+mut", detail=kmehr("closure", patient=P_BOTH))
    return v


def invalid_cases():
    cases = {}  # (code, name) -> bytes

    def add(code, name, comment, **kw):
        key = (code, name)
        assert key not in cases, key
        cases[key] = envelope(name, "invalid, expect %s. %s" % (code, comment), **kw)

    def addk(code, name, comment, op="send", patient=P_1985, envkw=None, **kkw):
        add(code, name, comment, op=op, patient=patient,
            detail=kmehr(op, patient=patient, **kkw), **(envkw or {}))

    # request id and author
    addk("111", "request_id_bad_format", "request id is not <NIHII11>.<yyyyMMddHHmmss>",
         request_id="%s-20250102093000" % MH)
    addk("111", "request_id_short_timestamp", "request id timestamp has 12 digits",
         request_id="%s.202501020930" % MH)
    addk("155", "request_id_nihii_not_author", "the NIHII in the request id is not the author's",
         request_id="%s.20250102093000" % MH_OTHER)
    addk("100", "request_author_nihii_missing", "request author hcparty has no id",
         request_author=None, request_id="%s.20250102093000" % MH)
    addk("111", "request_author_bad_check_digits", "request author NIHII check digits fail",
         request_author=bad_nihii(MH), request_id="%s.20250102093000" % MH)
    addk("155", "request_author_not_careprovider", "every kmehr NIHII is another medical house "
         "than the envelope CareProvider", house=MH_OTHER)
    # request date
    addk("146", "request_date_future", "request (and header) date is after today",
         request_date="2025-01-03")
    addk("191", "request_date_past", "request (and header) date is before today",
         request_date="2025-01-01")
    # header
    addk("130", "header_standard_unknown", "CD-STANDARD value no schema knows",
         standard="20991231")
    addk("130", "header_standard_not_a_date", "CD-STANDARD value is not a standard",
         standard="kmehr")
    addk("111", "header_id_bad_format", "header id is not a positive integer", header_id="x1")
    addk("156", "header_date_differs", "header date differs from the request date",
         header_date="2025-01-01")
    addk("100", "header_sender_nihii_missing", "header sender hcparty has no id", sender=None)
    addk("111", "header_sender_bad_check_digits", "header sender NIHII check digits fail",
         sender=bad_nihii(MH))
    addk("156", "header_sender_not_request_author", "header sender is another medical house "
         "than the request author", sender=MH_OTHER, tx_author=MH_OTHER)
    addk("100", "recipient_name_missing", "recipient hcparty has no name", recipient=None)
    addk("111", "recipient_name_not_mycarenet", "recipient name is not mycarenet",
         recipient="ehealth")
    # folder
    addk("256", "two_folders", "the kmehrmessage holds two folders", folders=2)
    addk("111", "folder_id_not_integer", "folder id is not a positive integer", folder_id="A")
    addk("111", "folder_id_zero", "folder id is 0", folder_id="0")
    # patient
    p = Patient("Ottoline", "Faussaert", "female", bad_niss(niss(82, 4, 21, 456)))
    addk("111", "patient_niss_bad_check_digits", "patient NISS check digits fail",
         patient=p)
    p = Patient("Gaspardin", "Foutmans", "male", bad_niss(niss(91, 45, 12, 7)))
    addk("111", "patient_bis_bad_check_digits", "patient BIS check digits fail", patient=p)
    p = Patient("Ottoline", "Faussaert", "female", "8204214560")
    addk("111", "patient_niss_ten_digits", "patient NISS has 10 digits", patient=p)
    p = Patient("Fevrier", "Onmogelijk", "male", niss(85, 2, 30, 41))
    addk("111", "patient_niss_impossible_date", "patient NISS has valid check digits but 30 "
         "February as birth date", patient=p)
    p = Patient("Nulla", "Zeroens", "female", niss(85, 7, 14, 0))
    addk("111", "patient_niss_sequence_000", "patient NISS has sequence number 000", patient=p)
    p = Patient([], "Sansprenom", "male", niss(75, 6, 6, 65))
    addk("111", "patient_firstname_missing", "patient has no firstname", patient=p)
    p = Patient("Sansnom", None, "male", niss(75, 6, 6, 67))
    addk("120", "patient_familyname_missing", "patient has no familyname", patient=p)
    p = Patient("Sanssexe", "Onbepaeld", None, niss(75, 6, 6, 69))
    addk("120", "patient_sex_missing", "patient has no sex", patient=p)
    p = Patient("Nemonia", "Zonderid", "female", None, "306", "93073099999")
    addk("100", "patient_no_niss_no_membership", "patient has neither a NISS nor an "
         "insurancymembership", patient=p, membership=False,
         envkw=dict(routing="mut"))
    addk("197", "membership_id_with_niss", "insurancymembership/id given although the NISS is "
         "given", membership=("306", None))
    addk("198", "membership_number_with_niss", "insurancymembership/membership given although "
         "the NISS is given", membership=(None, "85071412400"))
    p = Patient("Quirijn", "Mockelaere", "male", None, "30", "93073012345")
    addk("120", "mutuality_id_two_digits", "insurancymembership/id is not 3 digits", patient=p,
         envkw=dict(routing="mut"))
    p = Patient("Quirijn", "Mockelaere", "male", None, "3A6", "93073012345")
    addk("120", "mutuality_id_not_digits", "insurancymembership/id is not digits", patient=p,
         envkw=dict(routing="mut"))
    # transaction
    addk("111", "transaction_id_bad", "transaction id is not a positive integer", tx_id="T")
    addk("130", "transaction_cd_not_allowed", "transaction cd maaextension is not one of maa, "
         "maacancellation, maaclosure", tx_cd="maaextension")
    addk("130", "transaction_cd_cancellation_in_send", "SendSubscription carries a "
         "maacancellation transaction", tx_cd="maacancellation",
         items=default_items("maacancellation"))
    addk("130", "transaction_cd_maa_in_cancel", "CancelSubscription carries a maa transaction",
         op="cancel", tx_cd="maa", items=default_items("maa"))
    addk("130", "transaction_cd_maa_in_closure", "NotifySubscriptionClosure carries a maa "
         "transaction", op="closure", tx_cd="maa", items=default_items("maa"))
    addk("146", "transaction_date_future", "transaction date is after today",
         tx_date="2025-01-03")
    addk("191", "transaction_date_past", "transaction date is before today",
         tx_date="2024-12-31")
    addk("100", "transaction_author_nihii_missing", "transaction author has no id",
         tx_author=None)
    addk("111", "transaction_author_bad_check_digits", "transaction author NIHII check digits "
         "fail", tx_author=bad_nihii(MH))
    addk("140", "transaction_author_not_medical_house", "transaction author is a valid NIHII "
         "that is not a medical house", tx_author=GP)
    addk("156", "transaction_author_not_sender", "transaction author is another medical house "
         "than the header sender", tx_author=MH_OTHER)

    # items
    start = it_date("agreementstartdate", "2025-02-01")
    trial = it_bool("istrialperiod", "false")
    ident = it_documentidentity()
    addk("100", "agreementtype_missing", "maa without agreementtype item",
         items=[start, trial, ident])
    addk("100", "agreementtype_content_missing", "agreementtype item without content",
         items=[it_agreementtype(content=False), start, trial, ident])
    addk("130", "agreementtype_value_not_allowed", "agreementtype is not packagemedicalhouse",
         items=[it_agreementtype("packagephysiotherapy"), start, trial, ident])
    addk("100", "agreementstartdate_missing", "maa without agreementstartdate",
         items=[it_agreementtype(), trial, ident])
    addk("100", "agreementstartdate_content_missing", "agreementstartdate item without content",
         items=[it_agreementtype(), it_date("agreementstartdate", None), trial, ident])
    addk("246", "agreementstartdate_in_cancellation", "cancellation with agreementstartdate",
         op="cancel", items=[it_agreementtype(), it_decisionreference(), start])
    addk("246", "agreementstartdate_in_closure", "closure with agreementstartdate",
         op="closure", items=default_items("maaclosure") + [start])
    addk("247", "start_1900_with_trial_period", "start 01/01/1900 with istrialperiod true",
         items=[it_agreementtype(), it_date("agreementstartdate", "1900-01-01"),
                it_bool("istrialperiod", "true"), ident])
    end = it_date("agreementenddate", "2025-01-31")
    closure_wo_end = [it_agreementtype(), it_decisionreference(), it_closurejustification()]
    addk("100", "agreementenddate_missing", "closure without agreementenddate", op="closure",
         items=closure_wo_end)
    addk("100", "agreementenddate_content_missing", "agreementenddate item without content",
         op="closure", items=closure_wo_end[:2] + [it_date("agreementenddate", None)] +
         closure_wo_end[2:])
    addk("248", "agreementenddate_in_subscription", "maa with agreementenddate",
         items=default_items("maa") + [end])
    addk("248", "agreementenddate_in_cancellation", "cancellation with agreementenddate",
         op="cancel", items=default_items("maacancellation") + [end])

    def closure_end(value):
        return [it_agreementtype(), it_decisionreference(), it_date("agreementenddate", value),
                it_closurejustification()]
    addk("249", "agreementenddate_yesterday", "closure end date in the past", op="closure",
         items=closure_end("2025-01-01"))
    addk("249", "agreementenddate_last_year", "closure end date last year", op="closure",
         items=closure_end("2024-06-30"))
    addk("250", "agreementenddate_after_limit", "closure end date 2025-05-01 is after the last "
         "day of the current month + 3 months", op="closure", items=closure_end("2025-05-01"))
    addk("250", "agreementenddate_next_year", "closure end date in 2026", op="closure",
         items=closure_end("2026-01-31"))
    addk("100", "decisionreference_missing_in_cancellation", "cancellation without "
         "decisionreference", op="cancel", items=[it_agreementtype()])
    addk("100", "decisionreference_missing_in_closure", "closure without decisionreference",
         op="closure", items=[it_agreementtype(), end, it_closurejustification()])
    addk("251", "decisionreference_in_subscription", "maa with decisionreference",
         items=default_items("maa") + [it_decisionreference()])
    addk("100", "decisionreference_content_missing", "decisionreference item without content",
         op="cancel", items=[it_agreementtype(), it_decisionreference(None)])
    addk("111", "decisionreference_bad_format", "decisionreference holds characters outside "
         "letters, digits and dashes", op="cancel",
         items=[it_agreementtype(), it_decisionreference("REF 12/??")])
    addk("100", "istrialperiod_missing", "maa without istrialperiod",
         items=[it_agreementtype(), start, ident])
    addk("100", "istrialperiod_content_missing", "istrialperiod item without content",
         items=[it_agreementtype(), start, it_bool("istrialperiod", None), ident])
    addk("255", "istrialperiod_in_cancellation", "cancellation with istrialperiod", op="cancel",
         items=default_items("maacancellation") + [trial])
    addk("255", "istrialperiod_in_closure", "closure with istrialperiod", op="closure",
         items=default_items("maaclosure") + [trial])
    addk("100", "closurejustification_missing", "closure without closurejustification",
         op="closure", items=[it_agreementtype(), it_decisionreference(), end])
    addk("252", "closurejustification_in_subscription", "maa with closurejustification",
         items=default_items("maa") + [it_closurejustification()])
    addk("252", "closurejustification_in_cancellation", "cancellation with closurejustification",
         op="cancel", items=default_items("maacancellation") + [it_closurejustification()])
    addk("100", "closuredecision_cd_missing", "closurejustification without the "
         "MAA-CLOSUREDECISION cd", op="closure",
         items=[it_agreementtype(), it_decisionreference(), end,
                it_closurejustification(decision=None)])
    addk("100", "closurejustification_cd_missing", "closurejustification without the "
         "MAA-CLOSUREJUSTIFICATION cd", op="closure",
         items=[it_agreementtype(), it_decisionreference(), end,
                it_closurejustification(justification=None)])
    addk("100", "documentidentity_content_missing", "documentidentity item without content",
         items=[it_agreementtype(), start, trial, it_documentidentity(None)])
    addk("253", "documentidentity_extra_content", "documentidentity holds a cd beside "
         "SIGNATURE-TYPE", items=[it_agreementtype(), start, trial,
                                  it_documentidentity(extra=True)])
    addk("254", "documentidentity_in_cancellation", "cancellation with documentidentity",
         op="cancel", items=default_items("maacancellation") + [ident])
    addk("254", "documentidentity_in_closure", "closure with documentidentity", op="closure",
         items=default_items("maaclosure") + [ident])

    # envelope
    add("PSL-MHM-QUALITY", "careprovider_quality_doctor", "CareProvider Quality is doctor",
        quality="doctor")
    add("PSL-MHM-QUALITY", "careprovider_quality_empty", "CareProvider Quality is empty",
        quality="")
    add("PSL-MHM-NIHII", "careprovider_nihii_bad_check_digits", "CareProvider NIHII check "
        "digits fail", careprovider=bad_nihii(MH))
    add("PSL-MHM-NIHII", "careprovider_nihii_eight_digits", "CareProvider NIHII is not 11 "
        "digits", careprovider=MH[:8])
    add("PSL-MHM-NOT-MEDICAL-HOUSE", "careprovider_general_practitioner", "CareProvider NIHII "
        "is valid but not a medical house", careprovider=GP)
    add("PSL-MHM-ROUTING-SSIN", "routing_ssin_bad_check_digits", "Routing Ssin check digits "
        "fail", ssin=bad_niss(P_1985.niss))
    SENSITIVE.add(bad_niss(P_1985.niss))
    add("PSL-MHM-ROUTING-MISMATCH", "routing_ssin_other_patient", "Routing Ssin is a valid "
        "NISS of another patient than the kmehr patient", ssin=P_OTHER.niss)
    add("PSL-MHM-ROUTING", "routing_absent", "no Routing element", routing=None)
    add("PSL-MHM-ROUTING", "routing_carereceiver_empty", "Routing CareReceiver is empty",
        routing="")
    add("PSL-MHM-ROUTING", "routing_mutuality_without_regnr", "Routing has a Mutuality but no "
        "RegNrWithMut and no Ssin", routing="mut", patient=P_MUT, regnr="",
        detail=kmehr(patient=P_MUT))
    # blob
    add("PSL-BLOB-CONTENTTYPE", "content_type_octet_stream", "Detail ContentType is "
        "application/octet-stream", content_type="application/octet-stream")
    add("PSL-BLOB-CONTENTTYPE", "content_type_text_plain", "Detail ContentType is text/plain",
        content_type="text/plain")
    add("PSL-BLOB-ENCODING", "content_encoding_gzip", "Detail ContentEncoding gzip is unknown",
        encoding="gzip")
    add("PSL-BLOB-BASE64", "base64_bad_characters", "Detail content has characters outside "
        "base64", detail_b64="PD94bWwg!!!dmVyc2lvbj0i")
    add("PSL-BLOB-BASE64", "base64_truncated", "Detail content length is not a multiple of 4",
        detail_b64=base64.b64encode(kmehr().encode())[:-3].decode())
    add("PSL-BLOB-DEFLATE", "deflate_garbage", "Detail says deflate but holds bytes that are "
        "not a deflate stream", encoding="deflate",
        detail_b64=base64.b64encode(bytes(range(7, 250, 3))).decode())
    add("PSL-BLOB-DEFLATE", "deflate_truncated", "Detail deflate stream is cut short",
        encoding="deflate",
        detail_b64=base64.b64encode(raw_deflate(kmehr().encode())[:120]).decode())
    bomb = kmehr(leading="<!--" + " " * (3 * 1024 * 1024) + "-->\n")
    add("PSL-BLOB-SIZE", "deflate_bomb", "Detail inflates to more than 2 MiB (a comment of "
        "3 MiB spaces)", encoding="deflate", detail=bomb)
    add("PSL-BLOB-DEFLATE", "deflate_declared_but_plain", "ContentEncoding deflate but the "
        "content is the plain kmehr", encoding="deflate",
        detail_b64=base64.b64encode(kmehr().encode()).decode())
    # schema and XML
    add("PSL-MHM-DETAIL-ROOT", "detail_root_not_send_transaction", "the Detail payload is a "
        "RetrieveTransactionRequest, not a SendTransactionRequest",
        detail=kmehr().replace("SendTransactionRequest", "RetrieveTransactionRequest"))
    add("PSL-SCHEMA", "envelope_missing_commoninput", "the envelope has no CommonInput",
        commoninput=False)
    add("PSL-SCHEMA", "envelope_unknown_element", "CommonInput holds an element the schema "
        "does not define", common_extra="\n    <D:Priority>high</D:Priority>")
    addk("PSL-SCHEMA", "detail_unknown_element", "the kmehr patient holds an element the "
         "schema does not define", patient_extra="          <K:shoesize>43</K:shoesize>\n")
    env = envelope("envelope_not_well_formed", "invalid, expect PSL-XML-SYNTAX. the envelope "
                   "root is never closed")
    cases[("PSL-XML-SYNTAX", "envelope_not_well_formed")] = env[:env.rindex(b"</")]
    addk("PSL-XML-SYNTAX", "detail_not_well_formed", "the decoded kmehr has a mismatched end "
         "tag", patient_extra="          <K:text L=\"fr\">x</K:texte>\n")
    # A payload that does not start with an element has no root element: PSL-XML-EMPTY.
    add("PSL-XML-EMPTY", "detail_not_xml", "the Detail payload is plain text",
        detail="this is not XML\n")
    add("PSL-XML-EMPTY", "detail_deflated_but_declared_none", "ContentEncoding none but the "
        "content is deflated", detail_b64=base64.b64encode(raw_deflate(kmehr().encode())).decode())
    addk("PSL-XML-XINCLUDE", "detail_xinclude", "the decoded kmehr holds an XInclude element",
         patient_extra='          <xi:include xmlns:xi="http://www.w3.org/2001/XInclude" '
         'href="file:///etc/passwd" parse="text"/>\n')
    many = "".join(' a%d="x"' % i for i in range(40))
    add("PSL-XML-ATTRIBUTES", "envelope_too_many_attributes", "an envelope element with 40 "
        "attributes", common_extra="\n    <D:Extra%s/>" % many)
    add("PSL-XML-EMPTY", "detail_empty", "the Detail content is empty", detail_b64="")
    add("PSL-XML-DOCTYPE", "envelope_doctype", "the envelope declares a DOCTYPE",
        leading="<!DOCTYPE SendSubscriptionRequest>\n")
    add("PSL-XML-DOCTYPE", "envelope_entity_expansion", "the envelope declares entities "
        "(billion laughs shape, small)",
        leading='<!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]>\n')
    addk("PSL-XML-DOCTYPE", "detail_external_entity", "the decoded kmehr declares an external "
         "entity (XXE) and uses it",
         leading='<!DOCTYPE SendTransactionRequest [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n',
         patient_extra="          <K:text L=\"fr\">&xxe;</K:text>\n")
    deep = "".join("<D:Nest%d>" % i for i in range(100)) + "".join(
        "</D:Nest%d>" % i for i in reversed(range(100)))
    add("PSL-XML-DEPTH", "envelope_too_deep", "100 nested elements inside CommonInput",
        common_extra="\n    " + deep)
    kdeep = "".join("<K:text>" for _ in range(100)) + "".join("</K:text>" for _ in range(100))
    addk("PSL-XML-DEPTH", "detail_too_deep", "100 nested elements inside the kmehr patient",
         patient_extra="          " + kdeep + "\n")
    add("PSL-FLOW-UNKNOWN", "root_other_namespace", "root element in a namespace no flow uses",
        root="SendSubscriptionRequest", root_ns="urn:example:not-a-flow")
    add("PSL-FLOW-UNKNOWN", "root_unknown_name_in_mhm_namespace", "root element name the MHM "
        "protocol does not define", root="ModifySubscriptionRequest")
    add("PSL-FLOW-UNKNOWN", "root_saml_attribute_query", "a SAML AttributeQuery is not an MHM "
        "request", root="AttributeQuery", root_ns="urn:oasis:names:tc:SAML:2.0:protocol")
    return cases


def multi_cases():
    m = {}

    def add(name, comment, codes, **kw):
        m[name] = (envelope(name, "invalid, several faults: %s" % comment, **kw), codes)

    add("dates_all_wrong", "request date in the past, header date differs from it, "
        "transaction date in the future", ["146", "156", "191"],
        detail=kmehr(request_date="2025-01-01", header_date="2025-01-02",
                     tx_date="2025-01-03"))
    add("subscription_with_closure_items", "maa carrying agreementenddate, decisionreference "
        "and closurejustification", ["248", "251", "252"],
        detail=kmehr(items=default_items("maa") + [
            it_date("agreementenddate", "2025-01-31"), it_decisionreference(),
            it_closurejustification()]))
    add("closure_with_subscription_items", "closure in the past carrying agreementstartdate, "
        "istrialperiod and documentidentity", ["246", "249", "254", "255"], op="closure",
        detail=kmehr("closure", items=[
            it_agreementtype(), it_decisionreference(), it_date("agreementenddate", "2024-12-31"),
            it_closurejustification(), it_date("agreementstartdate", "2025-02-01"),
            it_bool("istrialperiod", "false"), it_documentidentity()]))
    add("envelope_and_recipient", "CareProvider quality wrong, Routing Ssin of another patient, "
        "recipient not mycarenet", ["111", "PSL-MHM-QUALITY", "PSL-MHM-ROUTING-MISMATCH"],
        quality="nurse", ssin=P_OTHER.niss, detail=kmehr(recipient="ehealth"))
    add("cancellation_incomplete", "cancellation without decisionreference, wrong agreementtype, "
        "folder id 0", ["100", "111", "130"], op="cancel",
        detail=kmehr("cancel", folder_id="0", items=[it_agreementtype("packagekine")]))
    p = Patient([], None, None, niss(64, 10, 10, 101))
    add("patient_without_names_and_sex", "the kmehr patient has only its NISS: the schema and "
        "the rules both report it", ["111", "120", "PSL-SCHEMA"], patient=p,
        detail=kmehr(patient=p))
    return m


# --- writing ---------------------------------------------------------------------------------

README_HINT = "Generated by conformance/generate_mhm_corpus.py; do not edit by hand.\n"


def write(out):
    return corpus_common.write_corpus(
        out, valid_cases(), invalid_cases(), multi_cases(),
        "# " + README_HINT + "# Patient values used in the corpus: no validation message may "
        "contain one.\n", SENSITIVE)

def main():
    return corpus_common.main(__doc__, "mhm", write, "generate_mhm_corpus.py")


if __name__ == "__main__":
    sys.exit(main())
