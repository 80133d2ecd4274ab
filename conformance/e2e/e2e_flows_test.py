#!/usr/bin/env python3
"""End-to-end tests of eAttest v3 (POST /v1/claims) and MediPrima UMA / consult (POST /v1/amu)
through the real binaries over real sockets.

eAttest: the practice sends its SendAttestationRequest unsealed; the gateway validates it, seals
it for MyCareNet's encryption certificate (here the simulator's signing certificate), commits the
sealed request and delivers it with attemptNbr = the attempt's number; the simulator opens it,
answers sealed for the gateway, and the gateway shows the decision and the invoicing number.
MediPrima: unsigned eHealth bodies to 690's UMA / consult endpoints; the answer's decision, codes
and attestation number are shown. Outcomes are read through the gateway's public API and the
simulator's control API.

Usage: e2e_flows_test.py BUILD_DIR SHARED_DIR [unittest args]
"""
import json
import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

BUILD = SHARED = None
INSURERS = ["300", "690"]  # union 300 (eAttest, routed on mutuality 319) and MediPrima 690
CARD_HOLDER = harness.MEDIPRIMA_NISS  # holds a medical card at the simulator (consult)
NO_CARD = harness.mediprima_corpus.niss(88, 8, 8, 12)  # holds none
BAD_SSIN = harness.mediprima_corpus.wrong_check(harness.MEDIPRIMA_BIS)
PATIENTS = harness.FLOW_PATIENTS + [NO_CARD, BAD_SSIN]
SIMULATOR_ARGS = ["--mediprima-beneficiary", CARD_HOLDER]


def leaked_patients(env):
    return env.leaked(PATIENTS)


def environment(tmp, **kw):
    return harness.Environment(BUILD, SHARED, tmp, insurers=INSURERS, flows=True,
                               simulator_args=list(SIMULATOR_ARGS), **kw)


class FlowsEndToEndTest(unittest.TestCase):
    """One simulator and one gateway for the whole class."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="psl-e2e-flows-")
        cls.env = environment(cls.tmp, max_attempts=6)
        cls.env.start_simulator()
        cls.env.start_gateway()
        cls.a = cls.env.practice(harness.PRACTICE_A)

    @classmethod
    def tearDownClass(cls):
        cls.env.stop_and_check_logs(PATIENTS, cls.tmp)

    def accepted(self, body, path):
        status, hdrs, reply = self.a.json("POST", path, body)
        self.assertEqual(status, 202, reply)
        self.assertEqual(hdrs.get("location"), "/v1/messages/" + reply["id"])
        return reply

    def answered(self, body, path="/v1/amu"):
        reply = self.accepted(body, path)
        final = self.env.wait_final(self.a, reply["id"])
        self.assertEqual(final["state"], "answered", final)
        return reply, final

    # --- eAttest ---------------------------------------------------------------------------
    def test_an_eattest_is_sealed_delivered_and_answered_with_an_invoicing_number(self):
        reply, final = self.answered(harness.eattest(), "/v1/claims")
        self.assertEqual((reply["kind"], reply["flow"], reply["operation"], reply["insurer"]),
                         ("claim", "eattest", "SendAttestation", "300"))
        self.assertEqual(final["decision"], "accepted", final)
        self.assertEqual(final["answer"]["decision"], "accepted", final)
        number = final["answer"]["insurer_reference"]
        self.assertTrue(number and number.startswith("300."), final)
        status, _, document = self.a.request("GET", "/v1/messages/%s/answer" % reply["id"])
        self.assertEqual(status, 200)
        self.assertIn(b"SendAttestationResponse", document)
        attempts = self.env.sim_stats()["by_insurer"]["300"]["eattest"]["attempts"]
        self.assertEqual(attempts.get("_" + reply["id"]), 1, attempts)

    def test_a_refused_eattest_shows_its_code(self):
        self.env.sim_control("eattest", {"insurer": "300", "decision": "refused", "codes": ["187"], "next": 1})
        reply, final = self.answered(harness.eattest(patient=harness.EATTEST_OTHER_PATIENT), "/v1/claims")
        self.assertEqual(final["decision"], "refused", final)
        self.assertIn("187", final["codes"], final)
        self.assertIsNone(final["answer"]["insurer_reference"], final)

    def test_an_eattest_is_retried_through_an_outage_with_increasing_attempt_numbers(self):
        before = self.env.sim_stats()["by_insurer"]["300"]
        self.env.sim_faults({"insurer": "300", "operation": "eattest", "fail_next": 2})
        reply, final = self.answered(harness.eattest(), "/v1/messages")  # flow detected
        self.assertEqual(reply["flow"], "eattest")
        self.assertEqual(final["decision"], "accepted", final)
        self.assertEqual(final["attempts"], 3, final)
        after = self.env.sim_stats()["by_insurer"]["300"]
        self.assertEqual(after["faults"]["http_503"] - before["faults"]["http_503"], 2)
        # Faulted requests are not opened: the one the simulator opened said attempt 3.
        self.assertEqual(after["eattest"]["attempts"].get("_" + reply["id"]), 3, after["eattest"])

    def test_an_eattest_is_cancelled_by_its_invoicing_number_and_only_once(self):
        patient = harness.EATTEST_OTHER_PATIENT
        _, sent = self.answered(harness.eattest(patient=patient), "/v1/claims")
        self.assertEqual(sent["decision"], "accepted", sent)
        number = sent["answer"]["insurer_reference"]
        before = self.env.sim_stats()["by_insurer"]["300"]["eattest"]["cancels"]
        reply, cancelled = self.answered(
            harness.eattest(patient=patient, op="cancel", invoicing_text=number), "/v1/claims")
        self.assertEqual((reply["flow"], reply["operation"]), ("eattest", "CancelAttestation"))
        self.assertEqual(cancelled["decision"], "accepted", cancelled)
        self.assertEqual(self.env.sim_stats()["by_insurer"]["300"]["eattest"]["cancels"], before + 1)
        # The same number again: the insurer's answer "already cancelled" (240) is shown.
        _, again = self.answered(
            harness.eattest(patient=patient, op="cancel", invoicing_text=number), "/v1/claims")
        self.assertEqual(again["decision"], "refused", again)
        self.assertIn("240", again["codes"], again)
        # A number the insurer never gave: 244.
        _, unknown = self.answered(
            harness.eattest(patient=patient, op="cancel", invoicing_text="300.19990101.0001"),
            "/v1/claims")
        self.assertEqual(unknown["decision"], "refused", unknown)
        self.assertIn("244", unknown["codes"], unknown)

    def test_an_invalid_eattest_is_refused_at_intake_with_code_and_path(self):
        bad = harness.eattest(practice=harness.PRACTICE_A, request_author=harness.PRACTICE_B)
        status, _, problem = self.a.json("POST", "/v1/claims", bad)
        self.assertEqual(status, 422, problem)
        codes = {e["code"]: e for e in problem["errors"]}
        self.assertIn("155", codes, problem)
        self.assertTrue(codes["155"]["path"], problem)
        text = json.dumps(problem)
        for niss in PATIENTS:
            self.assertNotIn(niss, text)

    def test_the_encryption_certificate_shows_in_readiness_and_metrics(self):
        ops = self.env.ops_port_client()
        status, _, body = ops.request("GET", "/readyz")
        self.assertEqual(status, 200, body)
        metrics = ops.request("GET", "/metrics")[2].decode()
        self.assertIn('passerelle_certificate_expiry_seconds{certificate="insurer-300-encryption"}', metrics)

    # --- MediPrima -------------------------------------------------------------------------
    def test_mediprima_send_search_and_delete(self):
        reply, sent = self.answered(harness.mediprima("send"))
        self.assertEqual((reply["kind"], reply["flow"], reply["operation"], reply["insurer"]),
                         ("amu", "mediprima", "SendUrgentMedicalAidAttestation", "690"))
        self.assertEqual(sent["decision"], "accepted", sent)
        number = sent["answer"]["insurer_reference"]
        self.assertTrue(number and number.startswith("UMA-690-"), sent)

        _, found = self.answered(harness.mediprima("search", number=number))
        self.assertEqual(found["decision"], "found", found)
        self.assertEqual(found["answer"]["insurer_reference"], number, found)

        _, deleted = self.answered(harness.mediprima("delete", number=number))
        self.assertEqual(deleted["decision"], "accepted", deleted)

        _, gone = self.answered(harness.mediprima("search", number=number))
        self.assertEqual(gone["decision"], "not-found", gone)

        _, again = self.answered(harness.mediprima("delete", number=number))
        self.assertEqual(again["decision"], "refused", again)
        self.assertIn("UMA-ATTESTATION-UNKNOWN", again["codes"], again)

    def test_mediprima_consult_is_answered(self):
        reply, card = self.answered(harness.mediprima("consult", ssin=CARD_HOLDER), "/v1/messages")
        self.assertEqual((reply["flow"], reply["operation"]), ("mediprima", "ConsultCarmedIntervention"))
        self.assertEqual(card["decision"], "found", card)
        self.assertTrue(card["answer"]["insurer_reference"], card)
        _, none = self.answered(harness.mediprima("consult", ssin=NO_CARD))
        self.assertEqual(none["decision"], "refused", none)
        self.assertIn("CARMED-NOT-FOUND", none["codes"], none)

    def test_mediprima_is_retried_through_an_outage(self):
        before = self.env.sim_stats()["by_insurer"]["690"]
        self.env.sim_faults({"insurer": "690", "operation": "mediprima", "fail_next": 2})
        reply, final = self.answered(harness.mediprima("send", ssin=harness.MEDIPRIMA_NISS))
        self.assertEqual(final["decision"], "accepted", final)
        self.assertEqual(final["attempts"], 3, final)
        after = self.env.sim_stats()["by_insurer"]["690"]
        self.assertEqual(after["faults"]["http_503"] - before["faults"]["http_503"], 2)

    def test_mediprima_refusal_injected_by_the_service_is_an_answer(self):
        self.env.sim_control("mediprima", {"insurer": "690", "decision": "refused", "codes": ["MSG-00010"],
                                           "next": 1, "operation": "send"})
        _, final = self.answered(harness.mediprima("send"))
        self.assertEqual(final["decision"], "refused", final)
        self.assertIn("MSG-00010", final["codes"], final)

    def test_an_invalid_mediprima_request_is_refused_with_code_line_and_path(self):
        status, _, problem = self.a.json("POST", "/v1/amu", harness.mediprima("send", ssin=BAD_SSIN))
        self.assertEqual(status, 422, problem)
        e = problem["errors"][0]
        self.assertEqual(e["code"], "PSL-MEDIPRIMA-SSIN-CHECK", problem)
        self.assertGreater(e["line"], 0, e)
        self.assertTrue(e["path"], e)
        self.assertNotIn(BAD_SSIN, json.dumps(problem))

    def test_documents_on_the_wrong_endpoint_name_the_right_one(self):
        status, _, problem = self.a.json("POST", "/v1/amu", harness.eattest())
        self.assertEqual(status, 422, problem)
        self.assertIn("/v1/claims", problem["detail"])
        status, _, problem = self.a.json("POST", "/v1/claims", harness.mediprima("send"))
        self.assertEqual(status, 422, problem)
        self.assertIn("/v1/amu", problem["detail"])


class FlowsCrashTest(unittest.TestCase):
    """kill -9 of the gateway while eAttest and MediPrima requests are in flight at the insurer:
    after the restart every acknowledged message is answered, exactly once."""

    def test_kill_dash_nine_with_messages_in_flight(self):
        tmp = tempfile.mkdtemp(prefix="psl-e2e-flows-crash-")
        env = environment(tmp)
        try:
            env.start_simulator()
            # Every answer takes 1.5 s: requests are in flight at the insurer when the gateway dies.
            env.sim_faults({"insurer": "300", "operation": "eattest", "latency_ms": 1500})
            env.sim_faults({"insurer": "690", "operation": "mediprima", "latency_ms": 1500})
            env.start_gateway()
            client = env.practice(harness.PRACTICE_A)
            ids = {"eattest": [], "mediprima": []}
            for i in range(3):
                status, _, reply = client.json("POST", "/v1/claims", harness.eattest())
                self.assertEqual(status, 202, reply)
                ids["eattest"].append(reply["id"])
                status, _, reply = client.json("POST", "/v1/amu", harness.mediprima("send"))
                self.assertEqual(status, 202, reply)
                ids["mediprima"].append(reply["id"])
            def delivering():
                status, _, listing = client.json("GET", "/v1/messages?state=delivering&limit=100")
                return status == 200 and len(listing["messages"]) >= 1

            # Killed while at least one delivery is at the insurer (its answer takes 1.5 s).
            env.wait_for(delivering, "a delivery to be in flight")
            env.gateway.kill9()
            env.sim_faults({"insurer": "300", "operation": "eattest"})  # latency off again
            env.sim_faults({"insurer": "690", "operation": "mediprima"})
            env.start_gateway()  # the same store
            client = env.practice(harness.PRACTICE_A)
            references = []
            for flow, flow_ids in ids.items():
                for message_id in flow_ids:
                    final = env.wait_final(client, message_id)
                    self.assertEqual(final["state"], "answered", final)
                    self.assertEqual(final["decision"], "accepted", final)
                    references.append(final["answer"]["insurer_reference"])
            # One answer per message; the simulator decided each message once (a re-sent message
            # got its stored answer), so no reference was handed out twice.
            self.assertEqual(len(set(references)), len(references), references)
            stats = env.sim_stats()["by_insurer"]
            self.assertEqual(stats["300"]["eattest"]["accepted"], len(ids["eattest"]), stats["300"]["eattest"])
            mediprima = stats["690"]["mediprima"]
            self.assertEqual(mediprima["sends"] - mediprima["duplicates"], len(ids["mediprima"]), mediprima)
            self.assertEqual(env.gateway.terminate(), 0, env.gateway.logs())
            self.assertEqual(leaked_patients(env), [])
        finally:
            env.stop()
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    BUILD, SHARED = sys.argv[1], sys.argv[2]
    unittest.main(argv=[sys.argv[0]] + sys.argv[3:], verbosity=2)
