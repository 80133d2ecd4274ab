#!/usr/bin/env python3
"""End-to-end tests of the real binaries over real sockets (issue: the gateway service).

The gateway (`passerelle serve`) runs on a RocksDB store in a temporary folder and delivers to
the insurer simulator (`insurer_simulator`) over mTLS; the tests speak HTTPS as practice software,
ops staff and auditors do, and read the simulator's own counters through its control API.

Usage: e2e_test.py BUILD_DIR SHARED_DIR [unittest args]
"""
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

BUILD = SHARED = None
USED_NISS = set()


def patient(i):
    niss = harness.niss_with_check("850101%03d" % i)
    USED_NISS.add(niss)
    return niss


class GatewayEndToEndTest(unittest.TestCase):
    """One simulator and one gateway for the whole class; each test uses its own patients."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="psl-e2e-")
        cls.env = harness.Environment(BUILD, SHARED, cls.tmp, max_attempts=4)
        cls.env.start_simulator()
        cls.env.start_gateway()
        cls.a = cls.env.practice(harness.PRACTICE_A)
        cls.b = cls.env.practice(harness.PRACTICE_B)

    @classmethod
    def tearDownClass(cls):
        cls.env.stop_and_check_logs(USED_NISS, cls.tmp)

    def send(self, client, body, path="/v1/enrolments", headers=None):
        return client.json("POST", path, body, headers)

    def accepted(self, client, body, path="/v1/enrolments", headers=None):
        status, hdrs, reply = self.send(client, body, path, headers)
        self.assertEqual(status, 202, reply)
        self.assertEqual(hdrs.get("location"), "/v1/messages/" + reply["id"])
        return reply

    def test_an_enrolment_is_accepted_delivered_and_answered(self):
        before = self.env.sim_stats()["accepted"]
        reply = self.accepted(self.a, harness.enrolment(SHARED, patient=patient(1)))
        self.assertEqual(reply["kind"], "enrolment")
        self.assertEqual(reply["insurer"], "300")  # mutuality 319 -> union 300
        final = self.env.wait_final(self.a, reply["id"])
        self.assertEqual(final["state"], "answered", final)
        self.assertEqual(final["answer"]["decision"], "accepted", final)
        self.assertTrue(final["answer"]["insurer_reference"], final)
        status, hdrs, answer = self.a.request("GET", "/v1/messages/%s/answer" % reply["id"])
        self.assertEqual(status, 200)
        self.assertIn(b"SendSubscriptionResponse", answer)
        self.assertEqual(self.env.sim_stats()["accepted"], before + 1)

    def test_the_same_patient_from_another_medical_house_is_refused_by_the_insurer(self):
        niss = patient(2)
        first = self.accepted(self.a, harness.enrolment(SHARED, patient=niss))
        self.assertEqual(self.env.wait_final(self.a, first["id"])["answer"]["decision"], "accepted")
        second = self.accepted(self.b, harness.enrolment(SHARED, practice=harness.PRACTICE_B, patient=niss))
        final = self.env.wait_final(self.b, second["id"])
        self.assertEqual(final["state"], "answered", final)
        self.assertEqual(final["answer"]["decision"], "refused", final)
        self.assertIn("260", final["answer"]["codes"])

    def test_an_invalid_request_is_refused_at_intake_with_its_codes_and_nothing_is_queued(self):
        good = patient(3)
        bad = good[:-1] + str((int(good[-1]) + 1) % 10)  # one wrong check digit
        USED_NISS.add(bad)
        status, _, listing = self.a.json("GET", "/v1/messages?limit=1000")
        self.assertEqual(status, 200)
        count = len(listing["messages"])
        status, hdrs, problem = self.send(self.a, harness.enrolment(SHARED, patient=bad))
        self.assertEqual(status, 422, problem)
        self.assertTrue(hdrs["content-type"].startswith("application/problem+json"))
        self.assertTrue(problem["errors"])
        for error in problem["errors"]:
            self.assertTrue(error["code"])
            self.assertIn("path", error)
        self.assertNotIn(bad, json.dumps(problem))
        status, _, listing = self.a.json("GET", "/v1/messages?limit=1000")
        self.assertEqual(len(listing["messages"]), count)

    def test_a_retry_with_the_same_idempotency_key_gets_the_same_id_and_another_body_conflicts(self):
        body = harness.enrolment(SHARED, patient=patient(4))
        first = self.accepted(self.a, body, headers={"Idempotency-Key": "retry-4"})
        status, hdrs, again = self.send(self.a, body, headers={"Idempotency-Key": "retry-4"})
        self.assertEqual(status, 202, again)
        self.assertEqual(again["id"], first["id"])
        self.assertEqual(hdrs.get("idempotent-replayed"), "true")
        other = harness.enrolment(SHARED, patient=patient(5))
        status, _, conflict = self.send(self.a, other, headers={"Idempotency-Key": "retry-4"})
        self.assertEqual(status, 409, conflict)
        self.assertEqual(self.env.wait_final(self.a, first["id"])["state"], "answered")

    def test_the_member_registry_routes_a_patient_the_insurer_accepted_before(self):
        niss = patient(11)
        first = self.accepted(self.a, harness.enrolment(SHARED, patient=niss, mutuality="419"))
        self.assertEqual(first["insurer"], "400")
        self.assertEqual(self.env.wait_final(self.a, first["id"])["answer"]["decision"], "accepted")
        # The same patient again, with only the Ssin in Routing: the registry learned 400.
        second = self.accepted(self.a, harness.enrolment(SHARED, patient=niss, mutuality=None, stamp_offset=1))
        self.assertEqual(second["insurer"], "400")
        status, _, problem = self.send(self.a, harness.enrolment(SHARED, patient=patient(12), mutuality=None))
        self.assertEqual(status, 422, problem)
        self.assertIn("insurer cannot be determined", json.dumps(problem))

    def test_intake_refusals_for_type_identity_and_sender(self):
        body = harness.enrolment(SHARED, patient=patient(6))
        status, _, _ = self.a.json("POST", "/v1/enrolments", body, content_type="application/json")
        self.assertEqual(status, 415)
        anonymous = harness.Client(self.env.port, self.env.pem("ca.pem"))
        status, _, _ = anonymous.json("POST", "/v1/enrolments", body)
        self.assertEqual(status, 401)
        status, _, _ = self.b.json("POST", "/v1/enrolments", body)  # A's document sent by B
        self.assertEqual(status, 403)
        status, _, _ = self.env.auditor().json("POST", "/v1/enrolments", body)
        self.assertEqual(status, 403)

    def test_a_practice_sees_only_its_own_messages(self):
        reply = self.accepted(self.a, harness.enrolment(SHARED, patient=patient(7)))
        status, _, _ = self.b.json("GET", "/v1/messages/" + reply["id"])
        self.assertEqual(status, 404)
        status, _, listing = self.b.json("GET", "/v1/messages?limit=1000")
        self.assertEqual(status, 200)
        self.assertNotIn(reply["id"], [m["id"] for m in listing["messages"]])

    def test_an_outage_is_ridden_out_with_backoff(self):
        self.env.sim_faults({"insurer": "100", "fail_next": 2})
        before = self.env.sim_stats()
        reply = self.accepted(self.a, harness.enrolment(SHARED, patient=patient(8), mutuality="100"))
        self.assertEqual(reply["insurer"], "100")
        final = self.env.wait_final(self.a, reply["id"])
        self.assertEqual(final["state"], "answered", final)
        self.assertEqual(final["attempts"], 3, final)
        after = self.env.sim_stats()
        self.assertEqual(after["faults"]["http_503"] - before["faults"]["http_503"], 2)

    def test_timeouts_resets_and_throttling_are_retried(self):
        # Checked in this order by the simulator: the first attempt is held (the gateway's
        # request timeout fires), the second is reset, the third gets 429 + Retry-After.
        self.env.sim_faults({"insurer": "200", "timeout_next": 1, "reset_next": 1, "throttle_next": 1,
                             "retry_after_s": 1})
        reply = self.accepted(self.a, harness.enrolment(SHARED, patient=patient(13), mutuality="200"))
        final = self.env.wait_final(self.a, reply["id"])
        self.assertEqual(final["state"], "answered", final)
        self.assertEqual(final["attempts"], 4, final)
        stats = self.env.sim_stats()["by_insurer"]["200"]["faults"]
        self.assertEqual((stats["timeout"], stats["reset"], stats["http_429"]), (1, 1, 1), stats)

    def test_exhausted_attempts_go_to_dead_letters_and_a_replay_delivers(self):
        self.env.sim_faults({"insurer": "500", "fail_next": 4})  # max_attempts = 4
        reply = self.accepted(self.a, harness.enrolment(SHARED, patient=patient(9), mutuality="500"))
        final = self.env.wait_final(self.a, reply["id"])
        self.assertEqual(final["state"], "dead", final)
        ops = self.env.ops()
        status, _, dead = ops.json("GET", "/v1/admin/dead-letters")
        self.assertEqual(status, 200, dead)
        self.assertIn(reply["id"], json.dumps(dead))
        cli = subprocess.run([os.path.join(BUILD, "gateway", "passerelle"), "dead-letters", "list",
                              "--url", "https://127.0.0.1:%d" % self.env.port, "--ca", self.env.pem("ca.pem"),
                              "--token-file", self._token_file()], capture_output=True, text=True)
        self.assertEqual(cli.returncode, 0, cli.stderr)
        self.assertIn(reply["id"], cli.stdout)
        status, _, _ = self.a.json("POST", "/v1/admin/messages/%s/replay" % reply["id"])
        self.assertEqual(status, 403)  # a practice is not ops
        status, _, replayed = ops.json("POST", "/v1/admin/messages/%s/replay" % reply["id"])
        self.assertEqual(status, 200, replayed)
        final = self.env.wait_final(self.a, reply["id"])
        self.assertEqual(final["state"], "answered", final)

    def _token_file(self):
        path = os.path.join(self.tmp, "ops.token")
        with open(path, "w") as f:
            f.write(harness.OPS_TOKEN + "\n")
        os.chmod(path, 0o600)
        return path

    def test_auditors_query_by_patient_and_verify_the_chain(self):
        niss = patient(10)
        reply = self.accepted(self.a, harness.enrolment(SHARED, patient=niss))
        self.env.wait_final(self.a, reply["id"])
        auditor = self.env.auditor()
        status, _, page = auditor.json("GET", "/v1/audit?patient=" + niss)
        self.assertEqual(status, 200, page)
        kinds = [e["kind"] for e in page["events"] if e.get("message_id") == reply["id"]]
        self.assertIn("accepted", kinds)
        self.assertIn("answered", kinds)
        self.assertNotIn(niss, json.dumps(page))
        status, _, verdict = auditor.json("GET", "/v1/audit/verify")
        self.assertEqual(status, 200, verdict)
        self.assertTrue(verdict["ok"], verdict)
        status, _, page = auditor.json("GET", "/v1/audit?kind=audit-query")
        self.assertEqual(status, 200)
        self.assertTrue(page["events"], "auditor queries are themselves audited")
        status, _, _ = self.a.json("GET", "/v1/audit")
        self.assertEqual(status, 403)
        # The CLI reads the running gateway's store as a RocksDB secondary.
        cli = subprocess.run([os.path.join(BUILD, "gateway", "passerelle"), "audit", "verify", "--data",
                              os.path.join(self.tmp, "store")], capture_output=True, text=True)
        self.assertEqual(cli.returncode, 0, cli.stdout + cli.stderr)

    def test_ops_port_health_readiness_and_metrics(self):
        ops = self.env.ops_port_client()
        self.assertEqual(ops.request("GET", "/healthz")[0], 200)
        status, _, ready = ops.request("GET", "/readyz")
        self.assertEqual(status, 200, ready)
        status, hdrs, metrics = ops.request("GET", "/metrics")
        self.assertEqual(status, 200)
        text = metrics.decode()
        for name in ("passerelle_requests_total", "passerelle_queue_depth", "passerelle_delivery_attempts_total",
                     "passerelle_commit_batch_size", "passerelle_certificate_expiry_seconds"):
            self.assertIn(name, text)
        # RocksDB's own memory: the memtables hold this test's messages.
        memtables = [line for line in text.splitlines()
                     if line.startswith('passerelle_store_memory_bytes{kind="memtables"} ')]
        self.assertEqual(len(memtables), 1, text)
        self.assertGreater(float(memtables[0].split()[-1]), 0)
        self.assertIn('passerelle_store_memory_bytes{kind="table_readers"} ', text)


class GatewayCrashTest(unittest.TestCase):
    """kill -9 of the gateway under load: every acknowledged message is answered after the
    restart, and the simulator never processes a message twice without recognising it."""

    def test_kill_dash_nine_under_load_loses_and_doubles_nothing(self):
        tmp = tempfile.mkdtemp(prefix="psl-e2e-crash-")
        env = harness.Environment(BUILD, SHARED, tmp)
        try:
            env.start_simulator()
            env.start_gateway()
            acknowledged = {}
            lock = threading.Lock()
            killed = threading.Event()
            total = 60

            def send(i):
                client = env.practice(harness.PRACTICE_A)
                body = harness.enrolment(SHARED, patient=patient(100 + i), mutuality=harness.UNIONS[i % 7])
                try:
                    status, _, reply = client.json("POST", "/v1/enrolments", body)
                except Exception:  # the gateway was killed under this request: not acknowledged
                    return
                finally:
                    client.close()
                if status == 202:
                    with lock:
                        acknowledged[reply["id"]] = i
                        if len(acknowledged) == total // 3 and not killed.is_set():
                            killed.set()
                            env.gateway.kill9()

            with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
                list(pool.map(send, range(total)))
            self.assertTrue(killed.is_set())
            self.assertGreaterEqual(len(acknowledged), total // 3)
            env.gateway.kill9()
            env.start_gateway()  # same store
            client = env.practice(harness.PRACTICE_A)
            for message_id in acknowledged:
                final = env.wait_final(client, message_id)
                self.assertEqual(final["state"], "answered", final)
                self.assertEqual(final["answer"]["decision"], "accepted", final)
            stats = env.sim_stats()
            status, _, listing = client.json("GET", "/v1/messages?limit=1000")
            committed = listing["messages"]
            for m in committed:  # committed but unacknowledged ones are delivered too
                env.wait_final(client, m["id"])
            stats = env.sim_stats()
            # Each distinct message was processed once: a repeat was recognised (counted as a
            # duplicate and answered from the insurer's store), never decided twice.
            self.assertEqual(stats["refused"], 0, stats)
            self.assertEqual(stats["accepted"], len(committed), stats)
            # A graceful stop: SIGTERM drains and closes the store, exit 0.
            self.assertEqual(env.gateway.terminate(), 0, env.gateway.logs())
            for niss in USED_NISS:
                self.assertNotIn(niss, env.gateway.logs(None) + env.simulator.logs(None))
        finally:
            env.stop()
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    BUILD, SHARED = sys.argv[1], sys.argv[2]
    unittest.main(argv=[sys.argv[0]] + sys.argv[3:], verbosity=2)
