#!/usr/bin/env python3
"""Generates the eAttest v3 conformance corpus under conformance/eattest/.

Layout written (the folder is wiped and rewritten, output is deterministic):
  eattest/valid/<name>.xml              must validate (kind "claim", flow "eattest")
  eattest/invalid/<code>/<name>.xml     must fail with at least the error <code> (one fault per file)
  eattest/multi/<name>.xml + .expected  must fail with exactly the error codes listed in .expected
  eattest/sensitive_values.txt          every patient value and amount used: no validation message
                                        may contain any of them

Every file is an eAttest v3 SendAttestationRequest / CancelAttestationRequest (namespace
urn:be:fgov:ehealth:mycarenet:attest:protocol:v3, commons protocol v4) as a practice sends it:
unsigned and unsealed, Detail = base64 of a kmehr SendTransactionRequest (CD-STANDARD 20210120,
validated with the kmehr 1.42 set) with transactions cga + cgd (cancel: cgacancellation).
Identifiers are invented, with check digits computed here (DOMAIN.md §2); every document is dated
2025-01-02 (the conformance test sets its clock to 2025-01-02T10:00:00Z). Error codes are those of
errors/eAttestErrors.json where it has one for the rule, else PSL-*.

Usage: generate_eattest_corpus.py [--out DIR]   rewrite DIR (default: eattest/ next to this script)
       generate_eattest_corpus.py --check       regenerate into a temporary folder, fail on a diff
Python 3 standard library only.
"""

import base64
import datetime
import sys
import zlib

import corpus_common
from corpus_common import bad_nihii, bad_niss, nihii, niss

TODAY = datetime.date(2025, 1, 2)
TOMORROW = TODAY + datetime.timedelta(days=1)

NS_ATTEST = "urn:be:fgov:ehealth:mycarenet:attest:protocol:v3"
NS_P4 = "urn:be:fgov:ehealth:mycarenet:commons:protocol:v4"
NS_C4 = "urn:be:fgov:ehealth:mycarenet:commons:core:v4"

SENSITIVE = set()


def cbe(first8):
    return "%s%02d" % (first8, 97 - int(first8) % 97)


DOCTOR = nihii("123456", "004")
DOCTOR_OTHER = nihii("114787", "004")
PRESCRIBER = nihii("176543", "003")
GMD = nihii("165432", "003")
CBE = cbe("04030192")
PATIENT_NISS = niss(85, 7, 14, 124)
PATIENT_2017 = niss(17, 3, 30, 86, born_2000=True)
PATIENT_BIS = niss(91, 5 + 20, 12, 1)
PATIENT_OTHER = niss(88, 8, 8, 881)
for v in [PATIENT_NISS, PATIENT_2017, PATIENT_BIS, PATIENT_OTHER, "Zephyrine", "Synthmans",
          "27.52"]:
    SENSITIVE.add(v)


def hcparty(nihii_value, cd="persphysician", name="Dr Exemple"):
    id_part = '<ns3:id S="ID-HCPARTY" SV="1.0">%s</ns3:id>' % nihii_value if nihii_value else ""
    return ('<ns3:hcparty>%s<ns3:cd S="CD-HCPARTY" SV="1.15">%s</ns3:cd>'
            '<ns3:name>%s</ns3:name></ns3:hcparty>' % (id_part, cd, name))


def cost(amount, unit="EUR", scheme="CD-CURRENCY"):
    return ('<ns3:cost><ns3:decimal>%s</ns3:decimal><ns3:unit><ns3:cd S="%s" SV="1.0">%s</ns3:cd>'
            '</ns3:unit></ns3:cost>' % (amount, scheme, unit))


def item(n, code, body):
    return ('<ns3:item><ns3:id S="ID-KMEHR" SV="1.0">%d</ns3:id>'
            '<ns3:cd S="CD-ITEM-MYCARENET" SV="1.6">%s</ns3:cd>%s</ns3:item>' % (n, code, body))


def cga(o):
    items = []
    n = 0
    if o["patientpaid"] is not None:
        n += 1
        items.append(item(n, "patientpaid", cost(o["patientpaid"], o["currency"])))
    if o["supplement"] is not None:
        n += 1
        items.append(item(n, "supplement", cost(o["supplement"])))
    if o["cbe"] is not None:
        n += 1
        items.append(item(n, "paymentreceivingparty",
                          '<ns3:content><ns3:id S="ID-CBE" SV="1.0">%s</ns3:id></ns3:content>'
                          % o["cbe"]))
    if o["treatmentreason"]:
        n += 1
        items.append(item(n, "treatmentreason",
                          '<ns3:content><ns3:cd S="LOCAL" SV="1.0" SL="NIHDI-TREATMENT-REASON">'
                          '1</ns3:cd></ns3:content>'))
    return ('<ns3:transaction><ns3:id S="ID-KMEHR" SV="1.0">%s</ns3:id>'
            '<ns3:cd S="CD-TRANSACTION-MYCARENET" SV="1.5">%s</ns3:cd>'
            '<ns3:date>%s</ns3:date><ns3:time>09:30:00</ns3:time>'
            '<ns3:author>%s</ns3:author><ns3:iscomplete>true</ns3:iscomplete>'
            '<ns3:isvalidated>true</ns3:isvalidated>%s</ns3:transaction>'
            % (o["cga_id"], o["cga_code"], o["cga_date"], hcparty(o["cga_author"]), "".join(items)))


def cgd(o, index, code="101032"):
    items = []
    n = 0
    if o["claim"]:
        n += 1
        content = ""
        if o["claim_code"] is not None:
            content += ('<ns3:content><ns3:cd S="CD-NIHDI" SV="1.0">%s</ns3:cd></ns3:content>'
                        % (o["claim_code"] or code))
        if o["claim_norm"]:
            content += ('<ns3:content><ns3:cd S="LOCAL" SV="1.0" SL="NIHDI-CLAIM-NORM">0</ns3:cd>'
                        '</ns3:content>')
        quantity = ('<ns3:quantity><ns3:decimal>%s</ns3:decimal></ns3:quantity>' % o["quantity"]
                    if o["quantity"] is not None else "")
        items.append(item(n, "claim", content + quantity))
    if o["encounter"] is not None:
        n += 1
        items.append(item(n, "encounterdatetime",
                          '<ns3:content><ns3:date>%s</ns3:date><ns3:time>09:00:00</ns3:time>'
                          '</ns3:content>' % o["encounter"]))
    if o["cgd_paid"] is not None:
        n += 1
        items.append(item(n, "patientpaid", cost(o["cgd_paid"])))
    if o["requestor"] is not None:
        n += 1
        items.append(item(n, "requestor",
                          '<ns3:content>%s</ns3:content><ns3:content><ns3:date>%s</ns3:date>'
                          '</ns3:content>' % (hcparty(o["requestor"], name="Dr Prescripteur"),
                                              o["requestor_date"])))
    if o["gmd"] is not None:
        n += 1
        items.append(item(n, "gmdmanager",
                          '<ns3:content>%s</ns3:content>' % hcparty(o["gmd"], name="Dr DMG")))
    return ('<ns3:transaction><ns3:id S="ID-KMEHR" SV="1.0">%d</ns3:id>'
            '<ns3:cd S="CD-TRANSACTION-MYCARENET" SV="1.5">%s</ns3:cd>'
            '<ns3:date>%s</ns3:date><ns3:time>09:30:00</ns3:time>'
            '<ns3:author>%s</ns3:author><ns3:iscomplete>true</ns3:iscomplete>'
            '<ns3:isvalidated>true</ns3:isvalidated>%s</ns3:transaction>'
            % (index, o["cgd_code"], o["cgd_date"], hcparty(o["cgd_author"]), "".join(items)))


def cancellation(o):
    content = ""
    if o["invoicing_text"] is not None:
        content += '<ns3:content><ns3:text L="fr">%s</ns3:text></ns3:content>' % o["invoicing_text"]
    if o["cancel_reason"]:
        content += ('<ns3:content><ns3:cd S="LOCAL" SV="1.0" SL="NIHDI-CANCELLATION-REASON">1'
                    '</ns3:cd></ns3:content>')
    items = item(1, "invoicingnumber", content) if o["invoicing_item"] else ""
    return ('<ns3:transaction><ns3:id S="ID-KMEHR" SV="1.0">1</ns3:id>'
            '<ns3:cd S="CD-TRANSACTION-MYCARENET" SV="1.5">cgacancellation</ns3:cd>'
            '<ns3:date>%s</ns3:date><ns3:time>09:30:00</ns3:time>'
            '<ns3:author>%s</ns3:author><ns3:iscomplete>true</ns3:iscomplete>'
            '<ns3:isvalidated>true</ns3:isvalidated>%s</ns3:transaction>'
            % (TODAY.isoformat(), hcparty(o["cga_author"]), items))


DEFAULTS = dict(
    op="send", request_author=DOCTOR, request_id=None, request_date=TODAY.isoformat(),
    standard="20210120", sender=DOCTOR, recipient="mycarenet", patient=PATIENT_NISS,
    first="Zephyrine", family="Synthmans", cga_id="1", cga_code="cga",
    cga_date=TODAY.isoformat(), cga_author=DOCTOR, patientpaid="27.52", currency="EUR",
    supplement=None, cbe=None, treatmentreason=False, cgd_count=1, cgd_code="cgd",
    cgd_date=TODAY.isoformat(), cgd_author=DOCTOR, claim=True, claim_code="", claim_norm=True,
    quantity="1", encounter=TODAY.isoformat(), cgd_paid=None, requestor=None,
    requestor_date=TODAY.isoformat(), gmd=None, with_cga=True, invoicing_item=True,
    invoicing_text="300.20250102.0001", cancel_reason=True,
    # envelope
    careprovider=DOCTOR, quality="doctor", ssin=None, mutuality=None, content_type="text/xml",
    encoding="none", encryption=None, xades=False, detail_b64=None, root=None, kmehr_op=None,
)


def kmehr(o):
    rid = o["request_id"] or "%s.20250102093000" % o["request_author"]
    if (o["kmehr_op"] or o["op"]) == "send":
        txs = (cga(o) if o["with_cga"] else "") + "".join(
            cgd(o, i + 1) for i in range(o["cgd_count"]))
    else:
        txs = cancellation(o)
    recipient = ('<ns3:hcparty><ns3:cd S="CD-HCPARTY" SV="1.15">application</ns3:cd>'
                 '<ns3:name>%s</ns3:name></ns3:hcparty>' % o["recipient"])
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<ns6:SendTransactionRequest xmlns="http://www.ehealth.fgov.be/standards/kmehr/id/v1" '
            'xmlns:ns2="http://www.ehealth.fgov.be/messageservices/core/v1" '
            'xmlns:ns3="http://www.ehealth.fgov.be/standards/kmehr/schema/v1" '
            'xmlns:ns6="http://www.ehealth.fgov.be/messageservices/protocol/v1" '
            'messageProtocoleSchemaVersion="1.34">\n'
            '<ns2:request><ns2:id S="ID-KMEHR" SV="1.0">%s</ns2:id>'
            '<ns2:author>%s</ns2:author><ns2:date>%s</ns2:date><ns2:time>09:30:00</ns2:time>'
            '</ns2:request>\n<ns2:kmehrmessage><ns3:header><ns3:standard>'
            '<ns3:cd S="CD-STANDARD" SV="1.35">%s</ns3:cd></ns3:standard>'
            '<ns3:id S="ID-KMEHR" SV="1.0">1</ns3:id><ns3:date>%s</ns3:date>'
            '<ns3:time>09:30:00</ns3:time><ns3:sender>%s</ns3:sender>'
            '<ns3:recipient>%s</ns3:recipient></ns3:header>\n'
            '<ns3:folder><ns3:id S="ID-KMEHR" SV="1.0">1</ns3:id><ns3:patient>'
            '<ns3:id S="ID-PATIENT" SV="1.0">%s</ns3:id><ns3:firstname>%s</ns3:firstname>'
            '<ns3:familyname>%s</ns3:familyname><ns3:sex><ns3:cd S="CD-SEX" SV="1.1">female'
            '</ns3:cd></ns3:sex></ns3:patient>\n%s</ns3:folder></ns2:kmehrmessage>\n'
            '</ns6:SendTransactionRequest>\n'
            % (rid, hcparty(o["request_author"]), o["request_date"], o["standard"],
               o["request_date"], hcparty(o["sender"]), recipient, o["patient"], o["first"],
               o["family"], txs))


def envelope(comment, **kw):
    o = dict(DEFAULTS)
    for k in kw:
        if k not in o:
            raise KeyError(k)
    o.update(kw)
    raw = kmehr(o).encode("utf-8")
    if o["detail_b64"] is not None:
        b64 = o["detail_b64"]
    else:
        if o["encoding"] == "deflate":
            c = zlib.compressobj(9, zlib.DEFLATED, -15)
            raw = c.compress(raw) + c.flush()
        b64 = base64.b64encode(raw).decode("ascii")
    ssin = o["ssin"] if o["ssin"] is not None else o["patient"]
    receiver = "<mc:Ssin>%s</mc:Ssin>" % ssin if ssin else ""
    if o["mutuality"]:
        receiver += "<mc:Mutuality>%s</mc:Mutuality>" % o["mutuality"]
    attrs = 'ContentType="%s" ContentEncoding="%s" Id="_7f3a0c1e-0000-4000-8000-000000000001"' % (
        o["content_type"], o["encoding"])
    if o["encryption"]:
        attrs += ' ContentEncryption="%s"' % o["encryption"]
    root = o["root"] or ("SendAttestationRequest" if o["op"] == "send"
                         else "CancelAttestationRequest")
    xades = "\n  <p:Xades>AAAA</p:Xades>" if o["xades"] else ""
    return ("""<?xml version="1.0" encoding="UTF-8"?>
<!-- SYNTHETIC conformance case: %s -->
<a:%s xmlns:a="%s" xmlns:p="%s" xmlns:mc="%s" Id="_7f3a0c1e-0000-4000-8000-000000000000" IssueInstant="2025-01-02T09:30:00Z">
  <p:CommonInput>
    <mc:Request><mc:IsTest>true</mc:IsTest></mc:Request>
    <mc:Origin>
      <mc:Package>
        <mc:Name>PasserelleConformance</mc:Name>
        <mc:License><mc:Username>CONFORMANCE-USER</mc:Username><mc:Password>CONFORMANCE-PASSWORD</mc:Password></mc:License>
      </mc:Package>
      <mc:CareProvider>
        <mc:Nihii><mc:Quality>%s</mc:Quality><mc:Value>%s</mc:Value></mc:Nihii>
      </mc:CareProvider>
    </mc:Origin>
    <mc:InputReference>20250102093000001</mc:InputReference>
  </p:CommonInput>
  <p:Routing>
    <mc:CareReceiver>%s</mc:CareReceiver>
    <mc:ReferenceDate>%s</mc:ReferenceDate>
  </p:Routing>
  <p:Detail %s>%s</p:Detail>%s
</a:%s>
""" % (comment, root, NS_ATTEST, NS_P4, NS_C4, o["quality"], o["careprovider"], receiver,
       TODAY.isoformat(), attrs, b64, xades, root)).encode("utf-8")


def valid_cases():
    v = {}
    v["send_basic"] = envelope("valid. one cga, one cgd")
    v["send_three_acts"] = envelope("valid. three cgd", cgd_count=3)
    v["send_supplement_cbe_reason"] = envelope(
        "valid. supplement, paymentreceivingparty, treatmentreason", supplement="4.00", cbe=CBE,
        treatmentreason=True)
    v["send_zero_paid"] = envelope("valid. patientpaid 0.00", patientpaid="0.00")
    v["send_integer_amount"] = envelope("valid. amount without decimals", patientpaid="31")
    v["send_one_decimal"] = envelope("valid. amount with one decimal", patientpaid="12.5")
    v["send_lowercase_currency"] = envelope("valid. currency eur (kmehr code table case)",
                                            currency="eur")
    v["send_requestor_gmd"] = envelope("valid. requestor and gmdmanager", requestor=PRESCRIBER,
                                       gmd=GMD)
    v["send_cgd_paid"] = envelope("valid. patientpaid in the cgd", cgd_paid="27.52")
    v["send_past_encounter"] = envelope("valid. act yesterday",
                                        encounter=(TODAY - datetime.timedelta(days=1)).isoformat())
    v["send_born_2017"] = envelope("valid. patient born 2017", patient=PATIENT_2017)
    v["send_bis"] = envelope("valid. BIS patient", patient=PATIENT_BIS)
    v["send_deflate"] = envelope("valid. deflate Detail", encoding="deflate")
    v["send_rcam"] = envelope("valid. Routing Mutuality rcam", mutuality="rcam")
    v["cancel_basic"] = envelope("valid. cancellation", op="cancel")
    v["cancel_deflate"] = envelope("valid. cancellation deflate", op="cancel", encoding="deflate")
    return v


def invalid_cases():
    i = {}

    def add(code, name, comment, **kw):
        i[(code, name)] = envelope("invalid, expect %s. %s" % (code, comment), **kw)

    add("111", "request_id_format", "request id not NIHII.timestamp", request_id="12345")
    add("111", "request_author_check_digits", "request author NIHII check digits",
        request_author=bad_nihii(DOCTOR), sender=bad_nihii(DOCTOR), cga_author=bad_nihii(DOCTOR),
        request_id=DOCTOR + ".20250102093000")
    add("155", "request_author_not_care_provider", "kmehr author differs from CommonInput",
        request_author=DOCTOR_OTHER, sender=DOCTOR_OTHER, cga_author=DOCTOR_OTHER)
    add("146", "request_date_future", "request date tomorrow", request_date=TOMORROW.isoformat())
    add("130", "unknown_standard", "CD-STANDARD no schema knows", standard="19990101")
    add("156", "sender_not_author", "header sender differs from request author",
        sender=DOCTOR_OTHER)
    add("111", "recipient_not_mycarenet", "recipient name", recipient="elsewhere")
    add("111", "patient_niss_check_digits", "patient NISS check digits",
        patient=bad_niss(PATIENT_NISS), ssin=PATIENT_NISS)
    add("155", "patient_not_routing", "patient differs from Routing Ssin", ssin=PATIENT_OTHER)
    add("100", "no_cga", "no cga transaction", with_cga=False)
    add("100", "no_cgd", "no cgd transaction", cgd_count=0)
    add("130", "cgd_code_in_cancel", "wrong transaction code", cga_code="cgx")
    add("PSL-EATTEST-NO-CGACANCELLATION", "cancel_with_cga",
        "CancelAttestationRequest carrying cga + cgd", op="cancel", kmehr_op="send")
    add("146", "cga_date_future", "cga date tomorrow", cga_date=TOMORROW.isoformat())
    add("146", "cgd_date_future", "cgd date tomorrow", cgd_date=TOMORROW.isoformat())
    add("111", "cga_author_check_digits", "cga author NIHII", cga_author=bad_nihii(DOCTOR))
    add("156", "cga_author_not_request_author", "cga author differs", cga_author=DOCTOR_OTHER)
    add("111", "cgd_author_check_digits", "cgd author NIHII", cgd_author=bad_nihii(DOCTOR))
    add("100", "patientpaid_missing", "no patientpaid in cga", patientpaid=None)
    add("111", "patientpaid_three_decimals", "amount 1.234", patientpaid="1.234")
    add("130", "patientpaid_negative", "amount -5.00", patientpaid="-5.00")
    add("130", "supplement_negative", "supplement -1", supplement="-1")
    add("PSL-EATTEST-CURRENCY", "currency_usd", "currency USD", currency="USD")
    add("111", "cbe_check_digits", "paymentreceivingparty CBE check digits",
        cbe=CBE[:8] + "%02d" % ((int(CBE[8:]) + 1) % 100))
    add("100", "claim_missing", "cgd without claim", claim=False)
    add("100", "claim_code_missing", "claim without CD-NIHDI", claim_code=None)
    add("130", "claim_code_format", "CD-NIHDI not 6 digits", claim_code="10103")
    add("100", "claim_norm_missing", "claim without NIHDI-CLAIM-NORM", claim_norm=False)
    add("100", "quantity_missing", "claim without quantity", quantity=None)
    add("111", "quantity_zero", "quantity 0", quantity="0")
    add("100", "encounter_missing", "cgd without encounterdatetime", encounter=None)
    add("146", "encounter_future", "act tomorrow", encounter=TOMORROW.isoformat())
    add("PSL-EATTEST-AMOUNT", "cgd_paid_negative", "cgd patientpaid negative", cgd_paid="-2")
    add("111", "requestor_check_digits", "requestor NIHII", requestor=bad_nihii(PRESCRIBER))
    add("146", "requestor_date_future", "prescription tomorrow", requestor=PRESCRIBER,
        requestor_date=TOMORROW.isoformat())
    add("111", "gmd_check_digits", "gmdmanager NIHII", gmd=bad_nihii(GMD))
    add("100", "invoicingnumber_missing", "cancellation without invoicingnumber", op="cancel",
        invoicing_item=False)
    add("100", "invoicingnumber_text_missing", "invoicingnumber without text", op="cancel",
        invoicing_text=None)
    add("111", "invoicingnumber_format", "invoicing number with a space", op="cancel",
        invoicing_text="300 2025")
    add("100", "cancellation_reason_missing", "no NIHDI-CANCELLATION-REASON", op="cancel",
        cancel_reason=False)
    add("PSL-EATTEST-NIHII", "careprovider_check_digits", "CommonInput NIHII check digits",
        careprovider=bad_nihii(DOCTOR))
    add("PSL-EATTEST-ROUTING-SSIN", "routing_ssin_bad", "Routing Ssin check digits",
        ssin=bad_niss(PATIENT_NISS))
    add("PSL-EATTEST-ROUTING-SSIN", "routing_ssin_missing", "Routing without Ssin", ssin="",
        mutuality="rcam")
    add("PSL-BLOB-CONTENTTYPE", "content_type_plain", "Detail text/plain",
        content_type="text/plain")
    add("PSL-EATTEST-ENCRYPTED", "already_encrypted", "ContentEncryption set",
        encryption="encryptedForKnownBED")
    add("PSL-EATTEST-XADES", "outer_xades", "outer Xades present", xades=True)
    add("PSL-BLOB-BASE64", "detail_not_base64", "Detail is not base64", detail_b64="!!notbase64")
    add("PSL-SCHEMA", "quantity_not_decimal", "quantity abc (schema)", quantity="abc")
    return i


def multi_cases():
    m = {}
    m["three_faults"] = (envelope("multi. negative amount, act tomorrow, bad CD-NIHDI",
                                  patientpaid="-1.00", encounter=TOMORROW.isoformat(),
                                  claim_code="12"),
                         {"130", "146"})
    m["author_and_routing"] = (envelope("multi. cga author differs, routing Ssin bad",
                                        cga_author=DOCTOR_OTHER, ssin=bad_niss(PATIENT_NISS)),
                               {"156", "PSL-EATTEST-ROUTING-SSIN"})
    m["cancel_two_faults"] = (envelope("multi. cancellation without text and reason", op="cancel",
                                       invoicing_text=None, cancel_reason=False),
                              {"100"})
    return m


README_HINT = "generated by conformance/generate_eattest_corpus.py: do not edit by hand.\n"


def write(out):
    return corpus_common.write_corpus(
        out, valid_cases(), invalid_cases(), multi_cases(),
        "# " + README_HINT + "# Patient values and amounts used in the corpus: no validation "
        "message may contain one.\n", SENSITIVE)

def main():
    return corpus_common.main(__doc__, "eattest", write, "generate_eattest_corpus.py")


if __name__ == "__main__":
    sys.exit(main())
