#!/usr/bin/env python3
"""`make demo`: the gateway with simulated insurers, real traffic, the answers as a table.

Starts the insurer simulator (unions 100-900 and MediPrima 690) and `passerelle serve` on
127.0.0.1 under BUILD/demo, sends enrolments from two medical houses, a third-party-payer (eFact)
batch, an AMU invoice, an eAttest v3 (sealed for MyCareNet's encryption certificate, here the
simulator's) and a MediPrima UMA attestation as practice software does (HTTPS with the practice's
client certificate), waits for the insurers' answers (for eFact: the TAck, then the return fetched from
the practice's mailbox), prints them, and keeps both running until Ctrl-C (PSL_DEMO_EXIT=1: stop
right after the table).

Usage: demo.py BUILD_DIR SHARED_DIR
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "conformance", "e2e"))
import harness  # noqa: E402

BOLD, END = "\033[1m", "\033[0m"


def step(text):
    print("\n%s== %s%s" % (BOLD, text, END), flush=True)


def main():
    build, shared = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    work = os.path.join(build, "demo")
    shutil.rmtree(work, ignore_errors=True)
    step("1. A test PKI (root and issuing CA, two medical houses, the gateway, insurers), keys and a config")
    env = harness.Environment(build, shared, work, insurers=harness.UNIONS + ["690"], retry_base_ms=200,
                              retry_cap_ms=2000, claims=True, mailbox_poll_ms=500, flows=True)
    print("   state folder: " + work)
    try:
        step("2. Simulated insurers for the unions %s and MediPrima 690 (one HTTPS server, mTLS)"
             % ", ".join(harness.UNIONS))
        env.start_simulator()
        print("   insurer simulator on https://127.0.0.1:%d/insurers/<code>/mhm and .../genasync" % env.sim_port)
        # The first enrolment attempt to union 500 meets a 503: the table shows the retry.
        env.sim_faults({"insurer": "500", "operation": "mhm", "fail_next": 1})
        step("3. The gateway (passerelle serve): RocksDB store, synced group commit, delivery workers")
        env.start_gateway()
        print("   practices' API https://127.0.0.1:%d   ops https://127.0.0.1:%d" % (env.port, env.ops_port))

        a, b = env.practice(harness.PRACTICE_A), env.practice(harness.PRACTICE_B)
        p1, p2 = harness.niss_with_check("850101001"), harness.niss_with_check("920315002")
        sent = []

        step("4. Medical house %s enrols two patients (mutualities 319 and 501)" % harness.PRACTICE_A)
        for niss, mut in ((p1, "319"), (p2, "501")):
            status, _, reply = a.json("POST", "/v1/enrolments", harness.enrolment(shared, patient=niss, mutuality=mut),
                                      {"Idempotency-Key": "demo-" + mut})
            print("   POST /v1/enrolments -> %d %s" % (status, json.dumps(reply)))
            sent.append((harness.PRACTICE_A, a, reply))

        # The first patient's enrolment is answered before the second house asks for the same patient.
        env.wait_final(a, sent[0][2]["id"])
        step("5. Medical house %s enrols the first patient too (the insurer will refuse: 260)" % harness.PRACTICE_B)
        status, _, reply = b.json("POST", "/v1/enrolments",
                                  harness.enrolment(shared, practice=harness.PRACTICE_B, patient=p1, mutuality="319"))
        print("   POST /v1/enrolments -> %d %s" % (status, json.dumps(reply)))
        sent.append((harness.PRACTICE_B, b, reply))

        step("5b. Medical house %s sends a third-party-payer batch (eFact HCPFAC) and an AMU invoice (ECM-HCPFAC)"
             % harness.PRACTICE_A)
        for path, kind in (("/v1/claims", "claim"), ("/v1/amu", "amu")):
            status, _, reply = a.json("POST", path, harness.claim(kind), {"Idempotency-Key": "demo-" + kind})
            print("   POST %s -> %d %s" % (path, status, json.dumps(reply)))
            sent.append((harness.PRACTICE_A, a, reply))

        step("5c. An eAttest v3 (sealed for MyCareNet) and a MediPrima UMA attestation (to 690)")
        for path, body, key in (("/v1/claims", harness.eattest(), "demo-eattest"),
                                ("/v1/amu", harness.mediprima("send"), "demo-uma")):
            status, _, reply = a.json("POST", path, body, {"Idempotency-Key": key})
            print("   POST %s -> %d %s" % (path, status, json.dumps(reply)))
            sent.append((harness.PRACTICE_A, a, reply))

        step("6. A request with one wrong check digit in the patient's NISS: refused at intake")
        bad = p2[:-1] + str((int(p2[-1]) + 1) % 10)
        status, _, problem = a.json("POST", "/v1/enrolments", harness.enrolment(shared, patient=bad, mutuality="501"))
        print("   POST /v1/enrolments -> %d" % status)
        for error in problem.get("errors", []) if isinstance(problem, dict) else []:
            print("     %-14s line %-3s %s" % (error.get("code"), error.get("line"), error.get("message")))

        step("7. The insurers' answers (GET /v1/messages/{id})")
        rows = []
        for practice, client, reply in sent:
            if "id" not in reply:
                continue
            final = env.wait_final(client, reply["id"])
            answer = final.get("answer") or {}
            decision, codes = answer.get("decision", ""), answer.get("codes", []) or []
            if reply.get("flow") == "efact":
                # The TAck ("received"), then the eFact return from the insurer's mailbox.
                final = env.wait_decision(client, reply["id"], ("accepted", "refused", "accepted-with-errors"))
                decision = " -> ".join([answer.get("decision", "")] + [r["decision"] for r in final["returns"]])
                codes = final.get("codes", [])
            kind = reply.get("kind", "") + ("/" + reply["flow"] if reply.get("flow") else "")
            rows.append((practice, kind, reply["id"], final.get("insurer", reply.get("insurer")),
                         final.get("state"), decision, ",".join(codes) or "-",
                         answer.get("insurer_reference") or "-", str(final.get("attempts", ""))))
        header = ("practice", "kind/flow", "message id", "insurer", "state", "decision", "codes", "insurer ref",
                  "attempts")
        widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
        for r in [header] + rows:
            print("   " + "  ".join(str(v).ljust(w) for v, w in zip(r, widths)))

        step("8. Ops and auditors")
        ops = env.ops_port_client()
        status, _, body = ops.request("GET", "/readyz")
        print("   /readyz -> %d %s" % (status, body.decode("utf-8", "replace").strip()))
        metrics = ops.request("GET", "/metrics")[2].decode()
        for line in metrics.splitlines():
            if line.startswith(("passerelle_requests_total", "passerelle_delivery_attempts_total",
                                "passerelle_mailbox_returns_total")):
                print("   " + line)
        status, _, verdict = env.auditor().json("GET", "/v1/audit/verify")
        print("   GET /v1/audit/verify -> %d %s" % (status, json.dumps(verdict)))

        if os.environ.get("PSL_DEMO_EXIT") == "1":
            return 0
        step("Running. Try it (Ctrl-C stops the gateway and the insurers):")
        pki = env.pki
        first = sent[0][2].get("id", "ID")
        print("   curl --cacert %s/ca.pem --cert %s/practice-%s-fullchain.pem --key %s/practice-%s.key \\\n"
              "        https://127.0.0.1:%d/v1/messages/%s" % (pki, pki, harness.PRACTICE_A, pki, harness.PRACTICE_A,
                                                             env.port, first))
        print("   curl --cacert %s/ca.pem -H 'Authorization: Bearer %s' https://127.0.0.1:%d/v1/audit/verify"
              % (pki, harness.AUDITOR_TOKEN, env.port))
        print("   curl --cacert %s/ca.pem https://127.0.0.1:%d/metrics" % (pki, env.ops_port))
        print("   config: %s/passerelle.toml   logs: %s/gateway.err" % (work, work))
        def stop(signum, frame):
            raise KeyboardInterrupt

        # Explicit handlers: a shell that starts us in the background leaves SIGINT ignored.
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            signal.pause()
        except KeyboardInterrupt:
            print("\n   stopping the gateway and the insurers", flush=True)
        return 0
    finally:
        env.stop()


if __name__ == "__main__":
    sys.exit(main())
