#!/usr/bin/env python3
"""End-to-end tests of third-party-payer claims and AMU invoices (eFact over Generic Async)
through the real binaries over real sockets.

A practice posts a genasync `post` (an eFact 920000 file) to the gateway; the gateway validates,
signs and delivers it to the insurer simulator, which answers a TAck (decision "received") and
later puts the eFact return file (931000 accepted, 920999 refused...) in the practice's mailbox;
the gateway's mailbox poller fetches it (get), records it and only then confirms it. The tests
read the outcome through the gateway's public API and the simulator's control API.

Usage: e2e_claims_test.py BUILD_DIR SHARED_DIR [unittest args]
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
INSURERS = ["300", "690"]  # union 300 (the corpus file's batch) and MediPrima 690 (AMU)
POLL_MS = 300
BAD_NISS = "17073003385"  # the "niss" defect of harness.claim_file
PATIENTS = harness.EFACT_PATIENTS + [BAD_NISS]


def leaked_patients(env):
    return env.leaked(PATIENTS)


class ClaimsEndToEndTest(unittest.TestCase):
    """One simulator and one gateway for the whole class."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="psl-e2e-claims-")
        cls.env = harness.Environment(BUILD, SHARED, cls.tmp, insurers=INSURERS, max_attempts=6,
                                      claims=True, mailbox_poll_ms=POLL_MS)
        cls.env.start_simulator()
        cls.env.start_gateway()
        cls.a = cls.env.practice(harness.PRACTICE_A)

    @classmethod
    def tearDownClass(cls):
        cls.env.stop_and_check_logs(PATIENTS, cls.tmp)

    def accepted(self, body, path="/v1/claims", headers=None):
        status, hdrs, reply = self.a.json("POST", path, body, headers)
        self.assertEqual(status, 202, reply)
        self.assertEqual(hdrs.get("location"), "/v1/messages/" + reply["id"])
        return reply

    def mailbox_empty(self, insurer):
        return self.env.wait_for(
            lambda: self.env.sim_stats()["by_insurer"][insurer]["mailbox_depth"] == 0,
            "the simulator's mailbox at %s to be empty" % insurer)

    def test_a_claim_is_received_then_accepted_by_its_return(self):
        reply = self.accepted(harness.claim())
        self.assertEqual((reply["kind"], reply["flow"], reply["insurer"]), ("claim", "efact", "300"))
        final = self.env.wait_decision(self.a, reply["id"], ("accepted",))
        self.assertEqual(final["state"], "answered", final)
        self.assertEqual(final["answer"]["decision"], "received", final)  # the TAck
        self.assertTrue(final["answer"]["insurer_reference"] is None or final["answer"]["insurer_reference"])
        self.assertEqual(len(final["returns"]), 1, final)
        self.assertEqual(final["returns"][0]["decision"], "accepted", final)
        status, _, document = self.a.request("GET", "/v1/messages/%s/answer" % reply["id"])
        self.assertEqual(status, 200)
        self.assertIn(b"MsgResponse", document)
        self.mailbox_empty("300")
        self.assertGreaterEqual(self.env.sim_stats()["by_insurer"]["300"]["returns_confirmed"], 1)

    def test_an_amu_invoice_goes_to_690_and_is_accepted(self):
        reply = self.accepted(harness.claim("amu"), path="/v1/amu")
        self.assertEqual((reply["kind"], reply["insurer"]), ("amu", "690"))
        final = self.env.wait_decision(self.a, reply["id"], ("accepted",))
        self.assertEqual(final["answer"]["decision"], "received", final)
        self.assertEqual(final["returns"][0]["decision"], "accepted", final)
        self.mailbox_empty("690")

    def test_a_claim_signed_by_the_practice_and_sent_to_messages_is_accepted(self):
        reply = self.accepted(self.env.signed(harness.claim()), path="/v1/messages")
        self.assertEqual(reply["kind"], "claim")
        self.env.wait_decision(self.a, reply["id"], ("accepted",))

    def test_a_refused_return_is_shown_with_its_code(self):
        self.env.sim_efact({"insurer": "300", "decision": "refused", "codes": ["200802"], "next": 1})
        reply = self.accepted(harness.claim())
        final = self.env.wait_decision(self.a, reply["id"], ("refused",))
        self.assertEqual(final["answer"]["decision"], "received", final)
        self.assertEqual(final["returns"][-1]["decision"], "refused", final)
        self.assertIn("200802", final["codes"], final)
        self.assertIn("200802", final["returns"][-1]["codes"], final)

    def test_invalid_files_are_refused_at_intake_with_record_zone_and_code(self):
        status, _, listing = self.a.json("GET", "/v1/messages?limit=1000")
        count = len(listing["messages"])
        for defect, code in (("checksum", "209902"), ("total", None), ("niss", "200802")):
            status, hdrs, problem = self.a.json("POST", "/v1/claims", harness.claim(defect=defect))
            self.assertEqual(status, 422, (defect, problem))
            self.assertTrue(hdrs["content-type"].startswith("application/problem+json"))
            errors = [e for e in problem["errors"] if e.get("document") == "efact"]
            self.assertTrue(errors, (defect, problem))
            for e in errors:
                self.assertGreater(e["line"], 0, e)  # the record
                self.assertTrue(e["path"], e)  # the zone
                self.assertTrue(e["code"], e)
            if code:
                self.assertIn(code, [e["code"] for e in errors], (defect, problem))
            else:  # a wrong total: a 6-digit eFact code or the gateway's own
                self.assertTrue(any(e["code"].isdigit() and len(e["code"]) == 6 or
                                    e["code"].startswith("PSL-EFACT") for e in errors), problem)
            text = json.dumps(problem)
            for niss in PATIENTS:
                self.assertNotIn(niss, text)
        status, _, listing = self.a.json("GET", "/v1/messages?limit=1000")
        self.assertEqual(len(listing["messages"]), count, "nothing was queued")

    def test_a_claim_on_the_amu_endpoint_names_the_claims_endpoint(self):
        status, _, problem = self.a.json("POST", "/v1/amu", harness.claim())
        self.assertEqual(status, 422, problem)
        self.assertIn("/v1/claims", problem["detail"])

    def test_an_outage_on_post_is_retried_then_delivered_and_answered(self):
        before = self.env.sim_stats()["by_insurer"]["300"]
        self.env.sim_faults({"insurer": "300", "operation": "post", "fail_next": 2})
        reply = self.accepted(harness.claim())
        final = self.env.wait_decision(self.a, reply["id"], ("accepted",))
        self.assertEqual(final["attempts"], 3, final)
        after = self.env.sim_stats()["by_insurer"]["300"]
        self.assertEqual(after["faults"]["http_503"] - before["faults"]["http_503"], 2)


class ClaimsCrashTest(unittest.TestCase):
    """kill -9 of the gateway between the mailbox get and its confirm: the return is recorded
    exactly once and the mailbox ends empty."""

    def test_kill_dash_nine_between_get_and_confirm(self):
        tmp = tempfile.mkdtemp(prefix="psl-e2e-claims-crash-")
        env = harness.Environment(BUILD, SHARED, tmp, insurers=INSURERS, claims=True,
                                  mailbox_poll_ms=POLL_MS)
        try:
            env.start_simulator()
            # The first confirm at 300 is held (never answered): the gateway has recorded the
            # return and waits for the confirm's answer when it is killed.
            env.sim_faults({"insurer": "300", "operation": "confirm", "timeout_next": 1})
            env.start_gateway()
            client = env.practice(harness.PRACTICE_A)
            status, _, reply = client.json("POST", "/v1/claims", harness.claim())
            self.assertEqual(status, 202, reply)
            env.wait_for(lambda: env.sim_stats()["held"] >= 1, "the confirm to be held by the simulator")
            self.assertGreaterEqual(env.sim_stats()["by_insurer"]["300"]["faults"]["timeout"], 1)
            env.gateway.kill9()
            env.start_gateway()  # the same store
            client = env.practice(harness.PRACTICE_A)
            final = env.wait_decision(client, reply["id"], ("accepted",))
            env.wait_for(lambda: env.sim_stats()["by_insurer"]["300"]["mailbox_depth"] == 0,
                         "the mailbox at 300 to be empty")
            final = env.message(client, reply["id"])
            self.assertEqual(len(final["returns"]), 1, final)  # recorded exactly once
            stats = env.sim_stats()["by_insurer"]["300"]
            self.assertGreaterEqual(stats["confirms"], 1, stats)
            self.assertEqual(env.gateway.terminate(), 0, env.gateway.logs())
            self.assertEqual(leaked_patients(env), [])
        finally:
            env.stop()
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    BUILD, SHARED = sys.argv[1], sys.argv[2]
    unittest.main(argv=[sys.argv[0]] + sys.argv[3:], verbosity=2)
