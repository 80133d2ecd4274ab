#!/usr/bin/env python3
"""The short load test (ctest load_smoke): loadgen against the real gateway and simulator.

Starts the insurer simulator and `passerelle serve` in a temporary folder (conformance/e2e/
harness.py), writes 60 valid enrolments from two medical houses for distinct patients, runs
loadgen open-loop for 3 s at 20 requests/s over 4 connections, and asserts correctness only:
every request got 202, no transport error, and every accepted message reaches "answered". Then
one second of a templated mix (mix.py: 80 % valid, 20 % with a wrong NISS check digit) asserts
that every response has the status its kind expects. Timings are printed, never asserted.

Usage: smoke_test.py BUILD_DIR SHARED_DIR [unittest args]
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "conformance", "e2e"))
import harness  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mix as mixlib  # noqa: E402

BUILD = SHARED = None
REQUESTS = 60
RATE = 20
DURATION_S = 3
CONNECTIONS = 4


def write_requests(shared, folder, count, niss_prefix="860101"):
    """Writes `count` (<= 999) valid enrolments dated today to `folder` as loadgen reads them:
    from the two test practices in turn, for distinct patients niss_with_check(niss_prefix +
    "%03d" % i), mutualities cycling through the unions. Returns `folder`."""
    assert 0 < count <= 999 and len(niss_prefix) == 6
    os.makedirs(folder, exist_ok=True)
    practices = (harness.PRACTICE_A, harness.PRACTICE_B)
    for i in range(1, count + 1):
        practice = practices[i % 2]
        body = harness.enrolment(shared, practice=practice, patient=harness.niss_with_check(niss_prefix + "%03d" % i),
                                 mutuality=harness.UNIONS[i % len(harness.UNIONS)], stamp_offset=i)
        with open(os.path.join(folder, "%s-%03d.xml" % (practice, i)), "wb") as f:
            f.write(body)
    return folder


class LoadSmokeTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="psl-load-smoke-")
        self.env = harness.Environment(BUILD, SHARED, self.tmp)
        self.passed = False

    def tearDown(self):
        self.env.stop()
        if self.passed:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            print("load_smoke: kept %s (gateway.err, simulator.err, loadgen.out)" % self.tmp)

    def test_every_request_is_accepted_delivered_and_answered(self):
        self.env.start_simulator()
        self.env.start_gateway()
        requests = write_requests(SHARED, os.path.join(self.tmp, "requests"), REQUESTS)
        ids_path = os.path.join(self.tmp, "ids.txt")
        json_path = os.path.join(self.tmp, "loadgen.json")
        argv = [os.path.join(BUILD, "load-tests", "loadgen"),
                "--url", "https://127.0.0.1:%d" % self.env.port, "--ca", self.env.pem("ca.pem"),
                "--requests", requests, "--cert-dir", self.env.pki,
                "--rate", str(RATE), "--duration", str(DURATION_S), "--connections", str(CONNECTIONS),
                "--drain", "30", "--timeout-ms", "30000", "--ids-out", ids_path, "--json-out", json_path]
        run = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        with open(os.path.join(self.tmp, "loadgen.out"), "w") as f:
            f.write(run.stdout + run.stderr)
        print(run.stdout, end="")
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)

        with open(json_path) as f:
            report = json.load(f)
        self.assertEqual(report["scheduled"], REQUESTS, report)
        self.assertEqual(report["sent"], REQUESTS, report)
        self.assertEqual(report["unsent"], 0, report)
        self.assertEqual(report["transport_errors"], {}, report)
        self.assertEqual(report["status"], {"202": REQUESTS}, report)
        self.assertEqual(report["ids_missing"], 0, report)
        self.assertEqual(report["latency_ms"]["count"], REQUESTS, report)

        with open(ids_path) as f:
            ids = [line.strip() for line in f if line.strip()]
        self.assertEqual(len(ids), REQUESTS)
        self.assertEqual(len(set(ids)), REQUESTS, "an id was given twice")

        # Each message is visible to the practice that sent it; ask A, then B.
        clients = [self.env.practice(harness.PRACTICE_A), self.env.practice(harness.PRACTICE_B)]
        owners = {}
        for message_id in ids:
            for client in clients:
                status, _, _ = client.json("GET", "/v1/messages/" + message_id)
                if status == 200:
                    owners[message_id] = client
                    break
            self.assertIn(message_id, owners, "no practice sees message %s" % message_id)
        for message_id, client in owners.items():
            final = self.env.wait_final(client, message_id, timeout=120)
            self.assertEqual(final["state"], "answered", final)
        for client in clients:
            client.close()

        # The templated mix: kinds by weight, practices, a patient pool, 422s expected.
        mix_file = mixlib.write_mix(SHARED, os.path.join(self.tmp, "mix"), invalid_weight=20, valid_weight=80,
                                    pool=500)
        mix_json = os.path.join(self.tmp, "loadgen-mix.json")
        argv = [os.path.join(BUILD, "load-tests", "loadgen"),
                "--url", "https://127.0.0.1:%d" % self.env.port, "--ca", self.env.pem("ca.pem"),
                "--mix", mix_file, "--cert-dir", self.env.pki, "--phases", "10:1,30:0.5",
                "--connections", str(CONNECTIONS), "--seed", "7", "--json-out", mix_json]
        run = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        with open(os.path.join(self.tmp, "loadgen-mix.out"), "w") as f:
            f.write(run.stdout + run.stderr)
        print(run.stdout, end="")
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        with open(mix_json) as f:
            report = json.load(f)
        self.assertEqual(report["scheduled"], 25, report)
        self.assertEqual(report["sent"], 25, report)
        self.assertEqual(report["transport_errors"], {}, report)
        self.assertEqual(report["unexpected"], 0, report)
        self.assertEqual(sum(k["sent"] for k in report["kinds"].values()), 25, report)
        self.assertEqual(sum(b["requests"] for b in report["timeline"]), 25, report)
        self.passed = True


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: smoke_test.py BUILD_DIR SHARED_DIR [unittest args]")
    BUILD, SHARED = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    unittest.main(argv=[sys.argv[0]] + sys.argv[3:], verbosity=2)
