#!/usr/bin/env python3
"""End-to-end test of admission control: an insurer whose delivery backlog reached its
`max_backlog` gets no new message (503 + Retry-After, nothing stored), other insurers still
accept, and once the insurer is back the backlog is delivered and intake accepts again.

The real gateway and simulator over real sockets (harness.py); union 300 has max_backlog = 3 and
is held down by the simulator's outage window (every request 503) until the test lifts it.
Outcomes are read through the gateway's public API (message states, the audit trail, /metrics),
polled against a deadline.

Usage: e2e_admission_test.py BUILD_DIR SHARED_DIR [unittest args]
"""
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

BUILD = SHARED = None
LIMITED = "300"  # mutuality 319 -> union 300
OTHER = "100"
MAX_BACKLOG = 3
USED_NISS = set()


def patient(i):
    niss = harness.niss_with_check("860202%03d" % (i + 1))  # sequence 000 is never issued
    USED_NISS.add(niss)
    return niss


class AdmissionEnvironment(harness.Environment):
    """The harness configuration with [insurers.300] max_backlog = 3."""

    def write_config(self):
        path = super().write_config()
        text = open(path).read()
        header = '[insurers.%s]\nname = "Simulated insurer %s"\n' % (LIMITED, LIMITED)
        assert header in text, "the harness configuration changed"
        text = text.replace(header, header + "max_backlog = %d\n" % MAX_BACKLOG)
        with open(path, "w") as f:
            f.write(text)
        return path


def metric(text, name, **labels):
    """The value of the sample `name{labels}` in a Prometheus text, or None."""
    want = ",".join('%s="%s"' % kv for kv in labels.items())
    prefix = name + ("{" + want + "}" if want else "") + " "
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix):])
    return None


class AdmissionEndToEndTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="psl-e2e-admission-")
        # Attempts never run out while the insurer is down (the backlog must stay pending).
        cls.env = AdmissionEnvironment(BUILD, SHARED, cls.tmp, insurers=[OTHER, LIMITED],
                                       max_attempts=10000)
        cls.env.start_simulator()
        cls.env.start_gateway()
        cls.a = cls.env.practice(harness.PRACTICE_A)

    @classmethod
    def tearDownClass(cls):
        cls.env.stop_and_check_logs(USED_NISS, cls.tmp)

    def enrol(self, niss, mutuality="319", key=None, offset=0, body=None):
        """POSTs `body`, else a new enrolment of `niss` (dated now: built once per request)."""
        headers = {"Idempotency-Key": key} if key else None
        if body is None:
            body = harness.enrolment(SHARED, patient=niss, mutuality=mutuality, stamp_offset=offset)
        return self.a.json("POST", "/v1/enrolments", body, headers)

    def accepted(self, *args, **kw):
        status, hdrs, reply = self.enrol(*args, **kw)
        self.assertEqual(status, 202, reply)
        self.assertEqual(hdrs.get("location"), "/v1/messages/" + reply["id"])
        return reply

    def metrics(self):
        status, _, body = self.env.ops_port_client().request("GET", "/metrics")
        self.assertEqual(status, 200)
        return body.decode("utf-8")

    def own_messages(self):
        status, _, page = self.a.json("GET", "/v1/messages?limit=1000")
        self.assertEqual(status, 200, page)
        return page["messages"]

    def audit_events(self, query):
        status, _, page = self.env.auditor().json("GET", "/v1/audit?" + query)
        self.assertEqual(status, 200, page)
        return page["events"]

    def test_a_full_backlog_refuses_new_work_until_it_is_delivered(self):
        # Union 300 is down: what it is sent stays pending.
        self.env.sim_faults({"insurer": LIMITED, "outage": {"start_in_s": 0, "duration_s": 3600}})
        pending = []
        for i in range(MAX_BACKLOG):
            reply = self.accepted(patient(i), offset=i)
            self.assertEqual(reply["insurer"], LIMITED)
            pending.append(reply["id"])
        # The simulator refuses them (the outage is in force) and they stay pending.
        self.env.wait_for(lambda: self.env.sim_stats()["by_insurer"][LIMITED]["faults"]["outage"] >= MAX_BACKLOG,
                          "the simulator to refuse the pending messages")
        self.assertEqual(metric(self.metrics(), "passerelle_queue_depth", insurer=LIMITED), MAX_BACKLOG)

        # The next one: 503 + Retry-After, a problem naming the insurer and the rule, nothing else.
        refused_niss = patient(10)
        audited_before = len(self.audit_events("kind=accepted&limit=1000"))
        refused_body = harness.enrolment(SHARED, patient=refused_niss, stamp_offset=10)
        status, hdrs, problem = self.enrol(refused_niss, key="admission-4", body=refused_body)
        self.assertEqual(status, 503, problem)
        self.assertEqual(hdrs.get("content-type"), "application/problem+json")
        retry_after = hdrs.get("retry-after")
        self.assertTrue(retry_after and retry_after.isdigit() and 1 <= int(retry_after) <= 300, hdrs)
        self.assertIn("delivery backlog for insurer %s is full (%d of %d)" % (LIMITED, MAX_BACKLOG, MAX_BACKLOG),
                      problem["detail"])
        self.assertEqual(problem["errors"][0]["code"], "PSL-BACKLOG-FULL", problem)
        self.assertNotIn(refused_niss, json.dumps(problem))
        self.assertEqual(sorted(m["id"] for m in self.own_messages()), sorted(pending))
        self.assertEqual(len(self.audit_events("kind=accepted&limit=1000")), audited_before)
        # (the query itself is audited with the patient's pseudonym: only that event is there)
        self.assertEqual([e["kind"] for e in self.audit_events("patient=" + refused_niss)], ["audit-query"])
        text = self.metrics()
        self.assertEqual(metric(text, "passerelle_queue_depth", insurer=LIMITED), MAX_BACKLOG)
        self.assertEqual(metric(text, "passerelle_intake_shed_total", reason="backlog", insurer=LIMITED), 1)

        # Another insurer still accepts and delivers.
        other = self.accepted(patient(20), mutuality=OTHER, offset=20)
        self.assertEqual(other["insurer"], OTHER)
        self.assertEqual(self.env.wait_final(self.a, other["id"])["state"], "answered")

        # Union 300 is back: the backlog is delivered, and the refused request, retried as it was
        # with its Idempotency-Key, is accepted as a new message (the 503 recorded nothing).
        self.env.sim_faults({"insurer": LIMITED})
        for message_id in pending:
            final = self.env.wait_final(self.a, message_id)
            self.assertEqual(final["state"], "answered", final)
        self.env.wait_for(lambda: metric(self.metrics(), "passerelle_queue_depth", insurer=LIMITED) == 0,
                          "the backlog of %s to be empty" % LIMITED)
        status, hdrs, reply = self.enrol(refused_niss, key="admission-4", body=refused_body)
        self.assertEqual(status, 202, reply)
        self.assertNotIn("idempotent-replayed", hdrs)
        self.assertEqual(reply["insurer"], LIMITED)
        self.assertEqual(self.env.wait_final(self.a, reply["id"])["state"], "answered")
        # The same key again is now the recorded message.
        status, hdrs, again = self.enrol(refused_niss, key="admission-4", body=refused_body)
        self.assertEqual(status, 202, again)
        self.assertEqual(again["id"], reply["id"])
        self.assertEqual(hdrs.get("idempotent-replayed"), "true")


if __name__ == "__main__":
    BUILD, SHARED = sys.argv[1], sys.argv[2]
    unittest.main(argv=[sys.argv[0]] + sys.argv[3:], verbosity=2)
