"""Runs the real binaries for the end-to-end tests and the demo: a test PKI, the insurer
simulator, the gateway (`passerelle serve`) on a RocksDB store in a temporary folder, and an
HTTPS client that speaks as practice software, ops staff and auditors do.

Everything listens on 127.0.0.1 with ports chosen by the kernel (port 0); each process reports
its port through a file it writes once it is listening, so nothing waits on a timer.
"""
import base64
import datetime
import hashlib
import http.client
import json
import os
import re
import shutil
import secrets
import signal
import ssl
import subprocess
import sys
import time
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "conformance"))
import generate_efact_corpus as efact_corpus  # noqa: E402
import generate_eattest_corpus as eattest_corpus  # noqa: E402
import generate_mediprima_corpus as mediprima_corpus  # noqa: E402
PRACTICE_A = "81234530000"
PRACTICE_B = "85432155100"
UNIONS = ["100", "200", "300", "400", "500", "600", "900"]
SAMPLE = "samples/mhm-SendSubscriptionRequest.SYNTHETIC.xml"
SAMPLE_PATIENT = "90010100123"
OPS_TOKEN = "ops-token-for-tests-only"
AUDITOR_TOKEN = "auditor-token-for-tests-only"


def brussels_now():
    now = datetime.datetime.now(datetime.timezone.utc)

    def last_sunday(year, month):
        d = datetime.datetime(year, month + 1, 1, 1, tzinfo=datetime.timezone.utc) - datetime.timedelta(days=1)
        return d - datetime.timedelta(days=(d.weekday() + 1) % 7)

    start, end = last_sunday(now.year, 3), last_sunday(now.year, 10)
    return now + datetime.timedelta(hours=2 if start <= now < end else 1)


def niss_with_check(base9, born_after_2000=False):
    """A NISS whose mod-97 check digits are right (DOMAIN.md: 97 - (n mod 97), '2' prefix after 2000)."""
    n = int(("2" if born_after_2000 else "") + base9)
    return base9 + "%02d" % (97 - n % 97)


def enrolment(shared, practice=PRACTICE_A, patient=SAMPLE_PATIENT, mutuality="319", stamp_offset=0):
    """An unsigned MHM SendSubscriptionRequest dated today (Brussels), from the shared sample,
    sent by `practice` for `patient`, whose Routing also names the patient's mutuality (the
    gateway routes on it: 319 -> union 300). `stamp_offset` (seconds) keeps kmehr request ids
    distinct."""
    envelope = open(os.path.join(shared, SAMPLE), encoding="utf-8").read()
    now = brussels_now() + datetime.timedelta(seconds=stamp_offset)
    today = now.strftime("%Y-%m-%d")
    stamp = now.strftime("%Y%m%d%H%M%S")
    first_next = (now.replace(day=1) + datetime.timedelta(days=32)).replace(day=1).strftime("%Y-%m-%d")
    m = re.search(r"(<mcp:Detail[^>]*>)([^<]*)(</mcp:Detail>)", envelope)
    detail = base64.b64decode(m.group(2)).decode("utf-8")
    detail = detail.replace("2025-02-01", first_next).replace("20250102093000", stamp)
    detail = detail.replace("2025-01-02", today).replace(PRACTICE_A, practice)
    detail = detail.replace(">" + SAMPLE_PATIENT + "<", ">" + patient + "<")
    envelope = envelope[: m.start(2)] + base64.b64encode(detail.encode()).decode() + envelope[m.end(2):]
    envelope = re.sub(r"\s*<mcp:Xades>[^<]*</mcp:Xades>", "", envelope)
    envelope = envelope.replace("2025-01-02", today).replace(PRACTICE_A, practice)
    envelope = envelope.replace(">" + SAMPLE_PATIENT + "<", ">" + patient + "<")
    if mutuality:
        envelope = envelope.replace(
            "<mc:Ssin>%s</mc:Ssin></mc:CareReceiver>" % patient,
            "<mc:Ssin>%s</mc:Ssin><mc:RegNrWithMut>%s</mc:RegNrWithMut><mc:Mutuality>%s</mc:Mutuality>"
            "</mc:CareReceiver>" % (patient, patient, mutuality))
    return envelope.encode("utf-8")


# --- eFact (genasync post) claims -------------------------------------------------------------
# The patients of the eFact corpus files (no log line may hold one).
EFACT_PATIENTS = list(efact_corpus.SENSITIVE)
_claim_counter = [0]


def _medical_house_file():
    """The corpus's valid medical-house file (sender PRACTICE_A, invoices for union 300)."""
    with open(os.path.join(ROOT, "conformance", "efact", "valid", "hcpfac_medical_house_306.xml")) as f:
        text = f.read()
    m = re.search(r"<gen:Detail[^>]*>([^<]*)</gen:Detail>", text)
    return zlib.decompress(base64.b64decode(m.group(1)), -15).decode("ascii")


def _with_sender(text, practice, sender=efact_corpus.SENDER_NIHII):
    """Every record naming `sender` (zone 14, positions 56-67) names `practice` (checksums
    recomputed)."""
    old, new = "0" + sender, "0" + practice
    out = text[:efact_corpus.HEADER]
    for at in range(efact_corpus.HEADER, len(text), efact_corpus.RECORD):
        record = text[at:at + efact_corpus.RECORD]
        if record[55:67] == old:
            record = record[:55] + new + record[67:348]
            record += "%02d" % efact_corpus.checksum(record[:348])
        out += record
    return out


def _unique_reference(text):
    """A distinct file reference (segment 200 zone 204), so that two files (and their returns)
    never have the same bytes."""
    _claim_counter[0] += 1
    reference = "%014d" % (int(time.time() * 1000) % 10 ** 9 * 1000 + _claim_counter[0] % 1000)
    at = text.index("00000000012345")
    assert at < efact_corpus.HEADER
    text = text[:at] + reference + text[at + 14:]
    # Records 95 (per-insurer totals, no checksum) repeat its last 12 digits in zone 402.
    out = text[:efact_corpus.HEADER]
    for at in range(efact_corpus.HEADER, len(text), efact_corpus.RECORD):
        record = text[at:at + efact_corpus.RECORD]
        if record[:2] == "95":
            record = record.replace("000000012345", reference[-12:], 1)
        out += record
    return out


def claim_file(kind="claim", practice=PRACTICE_A, defect=None):
    """An eFact 920000 file of `practice`: kind "claim" (HCPFAC, union 300) or "amu" (MediPrima,
    690). `defect`: "checksum" (record 2 zone 28 changed without its checksum), "total" (record 5
    zone 19 not the sum of its acts), "niss" (record 2 zone 8 with wrong check digits)."""
    if kind == "amu":
        text = _with_sender(efact_corpus.seed("valid-mediprima.txt"), practice)
    else:
        text = _medical_house_file()
        if practice != PRACTICE_A:
            text = _with_sender(text, practice, sender=PRACTICE_A)
    text = _unique_reference(text)
    if defect == "checksum":
        text = efact_corpus.patch(text, 2, "28", "INV-1", "INV-X", keep_checksum=True)
    elif defect == "total":
        text = efact_corpus.patch(text, 5, "19", "+00000004040", "+00000004041")
    elif defect == "niss":
        text = efact_corpus.patch(text, 2, "8", "0017073003384", "0017073003385")
    return text


def claim(kind="claim", practice=PRACTICE_A, defect=None):
    """A genasync post carrying claim_file(...) (MessageName HCPFAC, or ECM-HCPFAC for "amu"), as
    practice software sends it, unsigned (Environment.signed adds the practice's Xades-t)."""
    text = claim_file(kind, practice, defect)
    body = efact_corpus.envelope("claim from practice software", text,
                                 message_name="ECM-HCPFAC" if kind == "amu" else "HCPFAC",
                                 origin_nihii=practice)
    return body.encode("ascii")


# --- eAttest v3 and MediPrima UMA / consult --------------------------------------------------
# The patients of the eAttest and MediPrima builders below (no log line may hold one).
EATTEST_PATIENT = eattest_corpus.PATIENT_NISS
EATTEST_OTHER_PATIENT = eattest_corpus.PATIENT_OTHER
MEDIPRIMA_BIS = mediprima_corpus.BIS
MEDIPRIMA_NISS = mediprima_corpus.niss(85, 7, 30, 6)
MEDIPRIMA_PHYSICIAN = mediprima_corpus.PHYSICIAN
FLOW_PATIENTS = [EATTEST_PATIENT, EATTEST_OTHER_PATIENT, MEDIPRIMA_BIS, MEDIPRIMA_NISS]
_flow_counter = [0]


def eattest(practice=PRACTICE_A, patient=EATTEST_PATIENT, mutuality="319", op="send", **kw):
    """An unsealed, unsigned eAttest v3 SendAttestationRequest (or op="cancel":
    CancelAttestationRequest, kw invoicing_text=the number) dated today (Brussels), whose care
    provider, kmehr sender and authors are `practice`, for `patient`, routed on `mutuality` (319 ->
    union 300). Each call has its own kmehr request id."""
    today = brussels_now().date()
    eattest_corpus.TODAY = today  # the envelope's ReferenceDate
    d = today.isoformat()
    _flow_counter[0] += 1
    stamp = brussels_now().strftime("%Y%m%d%H%M%S")
    o = dict(op=op, request_author=practice, sender=practice, cga_author=practice,
             cgd_author=practice, careprovider=practice, patient=patient, mutuality=mutuality,
             request_date=d, cga_date=d, cgd_date=d, encounter=d, requestor_date=d,
             request_id="%s.%s" % (practice, stamp))
    o.update(kw)
    return eattest_corpus.envelope("e2e eAttest %d" % _flow_counter[0], **o)


def mediprima(op="send", ssin=MEDIPRIMA_BIS, number=None, author=MEDIPRIMA_PHYSICIAN):
    """A MediPrima request dated today (Brussels): op "send" (a 30-day DOCTOR attestation),
    "search" (by `number`, else by this month), "delete" (`number`) or "consult" (reference date
    today), for the beneficiary `ssin` (NISS or BIS), authored by the physician `author`."""
    today = brussels_now().date()
    end = today + datetime.timedelta(days=29)
    issue = {"Id": "_req-e2e",
             "IssueInstant": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    auth = mediprima_corpus.author(mediprima_corpus.physician(author))
    if op == "send":
        doc = mediprima_corpus.send(ssin=ssin, start=today.isoformat(), end=end.isoformat(),
                                    auth=auth, attrs=issue)
    elif op == "search":
        doc = mediprima_corpus.search(ssin=ssin, number=number,
                                      start=None if number else today.isoformat(),
                                      end=None if number else end.isoformat())
    elif op == "delete":
        doc = mediprima_corpus.delete(ssin=ssin, number=number, auth=auth)
    elif op == "consult":
        doc = mediprima_corpus.consult(ssin=ssin, reference=today.isoformat())
    else:
        raise ValueError(op)
    return (mediprima_corpus.header("e2e MediPrima " + op) + doc).encode("utf-8")


def subject_of(pem_file):
    out = subprocess.run(["openssl", "x509", "-in", pem_file, "-noout", "-subject", "-nameopt", "RFC2253"],
                         check=True, capture_output=True, text=True).stdout.strip()
    return out.split("=", 1)[1].strip() if out.startswith("subject=") else out


class Process:
    """A child process whose stdout and stderr go to files in the work folder."""

    def __init__(self, name, argv, work, env=None):
        self.name = name
        self.out_path = os.path.join(work, name + ".out")
        self.err_path = os.path.join(work, name + ".err")
        self.out = open(self.out_path, "ab")
        self.err = open(self.err_path, "ab")
        self.proc = subprocess.Popen(argv, stdout=self.out, stderr=self.err, stdin=subprocess.DEVNULL,
                                     env=env, cwd=work)

    def wait_for_file(self, path, timeout=60):
        """Blocks until the process has written `path` (its readiness report) or has died."""
        deadline = time.monotonic() + timeout
        while not os.path.exists(path):
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %s before it was ready:\n%s" %
                                   (self.name, self.proc.returncode, self.logs()))
            if time.monotonic() > deadline:
                raise RuntimeError("%s did not get ready in %ss:\n%s" % (self.name, timeout, self.logs()))
            time.sleep(0.02)  # polling a file another process writes; not a test synchronisation
        with open(path) as f:
            return f.read()

    def logs(self, tail=4000):
        """The process's stdout and stderr (the last `tail` characters of each; None = all)."""
        self.out.flush()
        self.err.flush()
        text = ""
        for p in (self.out_path, self.err_path):
            with open(p, "rb") as f:
                data = f.read().decode("utf-8", "replace")
            text += data if tail is None else data[-tail:]
        return text

    def terminate(self, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill9(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Client:
    """HTTPS with an optional client certificate and bearer token; keep-alive on one connection."""

    def __init__(self, port, ca, cert=None, key=None, token=None):
        self.port = port
        self.ctx = ssl.create_default_context(cafile=ca)
        self.ctx.check_hostname = True
        if cert:
            self.ctx.load_cert_chain(cert, key)
        self.token = token
        self.conn = None

    def request(self, method, path, body=None, headers=None, content_type="application/xml"):
        hdrs = dict(headers or {})
        if body is not None:
            hdrs.setdefault("Content-Type", content_type)
        if self.token:
            hdrs["Authorization"] = "Bearer " + self.token
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=60)
            try:
                self.conn.request(method, path, body=body, headers=hdrs)
                resp = self.conn.getresponse()
                data = resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    self.close()
                return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
            except (ConnectionError, http.client.RemoteDisconnected, ssl.SSLError):
                self.close()
                if attempt == 1 or method != "GET":
                    raise
        raise AssertionError("unreachable")

    def json(self, method, path, body=None, headers=None, content_type="application/xml"):
        status, hdrs, data = self.request(method, path, body, headers, content_type)
        try:
            return status, hdrs, json.loads(data.decode("utf-8")) if data else None
        except ValueError:
            return status, hdrs, data.decode("utf-8", "replace")

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Environment:
    """The PKI, keys, simulator and gateway of one test run, in `work`."""

    def __init__(self, build, shared, work, insurers=None, retry_base_ms=50, retry_cap_ms=400,
                 max_attempts=8, breaker_threshold=1000, simulator_args=None, claims=False,
                 mailbox_poll_ms=None, flows=False):
        self.build = os.path.abspath(build)
        self.shared = os.path.abspath(shared)
        self.work = os.path.abspath(work)
        self.insurers = insurers or UNIONS
        self.retry_base_ms = retry_base_ms
        self.retry_cap_ms = retry_cap_ms
        self.max_attempts = max_attempts
        self.breaker_threshold = breaker_threshold
        self.simulator_args = simulator_args or []
        # claims: every union also gets a claim_url and 690 (if played) an amu_url, on the
        # simulator's genasync endpoint; the gateway then polls their mailboxes.
        self.claims = claims
        # flows: every union also serves eAttest (eattest_url on the simulator, sealed for the
        # simulator's signing certificate, which plays MyCareNet's encryption certificate) and
        # 690 (if played) MediPrima UMA and consult.
        self.flows = flows
        self.mailbox_poll_ms = mailbox_poll_ms
        self.pki = os.path.join(self.work, "pki")
        self.gateway = None
        self.simulator = None
        self.port = None
        self.ops_port = None
        self.sim_port = None
        os.makedirs(self.work, exist_ok=True)
        if not os.path.exists(os.path.join(self.pki, "ca.pem")):
            subprocess.run(["bash", os.path.join(ROOT, "certs", "make-test-pki.sh"), self.pki],
                           check=True, stdout=subprocess.DEVNULL)
        keys = os.path.join(self.work, "keys")
        os.makedirs(keys, exist_ok=True)
        for name in ("payload.key", "pseudonym.key"):
            path = os.path.join(keys, name)
            if not os.path.exists(path):
                with open(path, "w") as f:
                    f.write(secrets.token_hex(32) + "\n")
                os.chmod(path, 0o600)
        self.pseudonym_key_file = os.path.join(keys, "pseudonym.key")

    def pem(self, name):
        return os.path.join(self.pki, name)

    # --- the insurer simulator ---------------------------------------------------------------
    def start_simulator(self):
        port_file = os.path.join(self.work, "simulator.port")
        if os.path.exists(port_file):
            os.remove(port_file)
        argv = [os.path.join(self.build, "conformance", "insurer_simulator"),
                "--listen", "127.0.0.1", "--port", "0", "--port-file", port_file,
                "--cert", self.pem("insurer-100-fullchain.pem"), "--key", self.pem("insurer-100.key"),
                "--client-ca", self.pem("ca.pem"),
                "--sign-key", self.pem("insurer-100.key"), "--sign-cert", self.pem("insurer-100.pem"),
                "--sign-chain", self.pem("insurer-100-chain.pem"),
                "--trust", self.pem("ca.pem"), "--intermediates", self.pem("intermediate.pem"),
                "--schemas", os.path.join(self.shared, "schemas"), "--verbose"]
        for code in self.insurers:
            argv += ["--insurer", code]
        argv += self.simulator_args
        self.simulator = Process("simulator", argv, self.work)
        self.sim_port = int(self.simulator.wait_for_file(port_file).strip())
        return self.sim_port

    def simulator_client(self):
        return Client(self.sim_port, self.pem("ca.pem"), self.pem("ops-fullchain.pem"), self.pem("ops.key"))

    def sim_stats(self):
        status, _, body = self.simulator_client().json("GET", "/control/stats")
        assert status == 200, body
        return body

    def sim_efact(self, control):
        """POST /control/efact: the decision of the next accepted posts (simulator README)."""
        status, _, body = self.simulator_client().json("POST", "/control/efact", json.dumps(control).encode(),
                                                        content_type="application/json")
        assert status == 200, body
        return body

    def sim_control(self, what, control):
        """POST /control/<what> (mediprima, eattest: injected refusals; simulator README)."""
        status, _, body = self.simulator_client().json("POST", "/control/" + what, json.dumps(control).encode(),
                                                        content_type="application/json")
        assert status == 200, body
        return body

    def sim_faults(self, plan):
        status, _, body = self.simulator_client().json("POST", "/control/faults", json.dumps(plan).encode(),
                                                        content_type="application/json")
        assert status == 200, body
        return body

    # --- the gateway --------------------------------------------------------------------------
    def write_config(self):
        def q(path):
            return json.dumps(path)

        lines = [
            "[server]",
            'listen_address = "127.0.0.1"', "port = 0", 'ops_address = "127.0.0.1"', "ops_port = 0",
            "tls_cert_file = " + q(self.pem("gateway-fullchain.pem")),
            "tls_key_file = " + q(self.pem("gateway.key")),
            "client_ca_file = " + q(self.pem("ca.pem")),
            "read_deadline_ms = 5000", "write_deadline_ms = 5000", "idle_timeout_ms = 30000",
            "",
            "[store]",
            "data_dir = " + q(os.path.join(self.work, "store")),
            "payload_key_file = " + q(os.path.join(self.work, "keys", "payload.key")),
            "pseudonym_key_file = " + q(self.pseudonym_key_file),
            "free_space_reserve_bytes = %d" % (64 << 20),
            "checkpoint_every_events = 20",
            "",
            "[schemas]", "dir = " + q(os.path.join(self.shared, "schemas")),
            "",
            "[signing]",
            "key_file = " + q(self.pem("gateway.key")),
            "cert_file = " + q(self.pem("gateway.pem")),
            "chain_file = " + q(self.pem("gateway-chain.pem")),
            "",
            "[auth]",
            "ops_token_sha256 = [%s]" % q(hashlib.sha256(OPS_TOKEN.encode()).hexdigest()),
            "auditor_token_sha256 = [%s]" % q(hashlib.sha256(AUDITOR_TOKEN.encode()).hexdigest()),
            "ops_cert_subjects = [%s]" % q(subject_of(self.pem("ops.pem"))),
            "auditor_cert_subjects = [%s]" % q(subject_of(self.pem("auditor.pem"))),
        ]
        for nihii in (PRACTICE_A, PRACTICE_B):
            name = "practice-" + nihii
            lines += ["", "[practices.%s]" % nihii,
                      'name = "Maison medicale %s"' % nihii,
                      "cert_subjects = [%s]" % q(subject_of(self.pem(name + ".pem"))),
                      "signing_key_file = " + q(self.pem(name + ".key")),
                      "signing_cert_file = " + q(self.pem(name + ".pem")),
                      "signing_chain_file = " + q(self.pem(name + "-chain.pem")),
                      # MediPrima UMA: a medical house sends only for its listed physicians.
                      "physicians = [%s]" % q(MEDIPRIMA_PHYSICIAN)]
        for code in self.insurers:
            urls = []
            if code != "690":
                urls.append('enrolment_url = "https://127.0.0.1:%d/insurers/%s/mhm"' % (self.sim_port, code))
            if self.claims or (self.flows and code != "690"):
                urls.append('%s_url = "https://127.0.0.1:%d/insurers/%s/genasync"'
                            % ("amu" if code == "690" else "claim", self.sim_port, code))
            if self.flows and code == "690":
                urls += ['%s = "https://127.0.0.1:%d/insurers/690/mediprima"' % (key, self.sim_port)
                         for key in ("mediprima_uma_url", "mediprima_consult_url")]
            elif self.flows:
                urls += ['eattest_url = "https://127.0.0.1:%d/insurers/%s/eattest"' % (self.sim_port, code),
                         "encryption_cert_file = " + q(self.pem("insurer-100.pem"))]
            lines += ["", "[insurers.%s]" % code,
                      'name = "Simulated insurer %s"' % code] + urls + [
                      "client_key_file = " + q(self.pem("gateway.key")),
                      "client_cert_file = " + q(self.pem("gateway-fullchain.pem")),
                      "ca_file = " + q(self.pem("ca.pem")),
                      # the simulator's signing certificates chain to the test CA too
                      "signing_ca_file = " + q(self.pem("ca.pem")),
                      "connect_timeout_ms = 2000", "request_timeout_ms = 3000", "max_in_flight = 2",
                      "[insurers.%s.retry]" % code,
                      "base_ms = %d" % self.retry_base_ms, "cap_ms = %d" % self.retry_cap_ms,
                      "max_attempts = %d" % self.max_attempts, "max_age_hours = 48",
                      "[insurers.%s.breaker]" % code,
                      "failure_threshold = %d" % self.breaker_threshold, "open_ms = 200",
                      "half_open_probes = 1"]
        if self.mailbox_poll_ms:
            lines += ["", "[mailbox]", "poll_interval_ms = %d" % self.mailbox_poll_ms,
                      "max_backoff_ms = %d" % max(self.mailbox_poll_ms, 2000), "max_messages = 100"]
        lines += ["", "[logging]", 'level = "info"', 'format = "json"', "", "[keys]", "expiry_warning_days = 30", ""]
        path = os.path.join(self.work, "passerelle.toml")
        with open(path, "w") as f:
            f.write("\n".join(lines))
        return path

    def start_gateway(self):
        config = self.write_config()
        ready = os.path.join(self.work, "gateway.ready")
        if os.path.exists(ready):
            os.remove(ready)
        argv = [os.path.join(self.build, "gateway", "passerelle"), "serve", "--config", config,
                "--ready-file", ready]
        self.gateway = Process("gateway", argv, self.work)
        info = json.loads(self.gateway.wait_for_file(ready))
        self.port, self.ops_port = info["port"], info["ops_port"]
        return self.port

    def practice(self, nihii=PRACTICE_A):
        name = "practice-" + nihii
        return Client(self.port, self.pem("ca.pem"), self.pem(name + "-fullchain.pem"), self.pem(name + ".key"))

    def ops(self):
        return Client(self.port, self.pem("ca.pem"), token=OPS_TOKEN)

    def auditor(self):
        return Client(self.port, self.pem("ca.pem"), token=AUDITOR_TOKEN)

    def ops_port_client(self):
        return Client(self.ops_port, self.pem("ca.pem"))

    def wait_for(self, predicate, what, timeout=120):
        """Polls the gateway's public API until `predicate()` holds (the test's observable outcome)."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting for " + what)
            time.sleep(0.05)

    def message(self, client, message_id):
        status, _, body = client.json("GET", "/v1/messages/" + message_id)
        assert status == 200, (status, body)
        return body

    def wait_final(self, client, message_id, timeout=120):
        return self.wait_for(lambda: (lambda m: m if m.get("state") in ("answered", "dead") else None)(
            self.message(client, message_id)), "message %s to be answered or dead" % message_id, timeout)

    def signed(self, post, practice=PRACTICE_A):
        """`post` with its Xades-t by the practice's own key (`passerelle sign`)."""
        name = "practice-" + practice
        path = os.path.join(self.work, "unsigned-%d.xml" % secrets.randbelow(10 ** 9))
        with open(path, "wb") as f:
            f.write(post)
        out = subprocess.run([os.path.join(self.build, "gateway", "passerelle"), "sign", "--no-validate",
                              "--key", self.pem(name + ".key"), "--cert", self.pem(name + ".pem"),
                              "--chain", self.pem(name + "-chain.pem"), path],
                             check=True, capture_output=True)
        os.remove(path)
        return out.stdout

    def wait_decision(self, client, message_id, decisions, timeout=120):
        """Waits until the message's visible decision is one of `decisions` (an eFact claim:
        after its TAck, the return fetched from the mailbox)."""
        return self.wait_for(lambda: (lambda m: m if m.get("decision") in decisions else None)(
            self.message(client, message_id)), "message %s to reach %s" % (message_id, decisions), timeout)

    def leaked(self, patients):
        """The NISS of `patients` that appear in a log line of the gateway or the simulator."""
        logs = self.gateway.logs(None) + self.simulator.logs(None)
        return [n for n in patients if n in logs]

    def stop_and_check_logs(self, patients, tmp):
        """Stops both processes, removes `tmp`, and fails if any of `patients` was logged."""
        self.stop()
        leaked = self.leaked(patients)
        shutil.rmtree(tmp, ignore_errors=True)
        if leaked:
            raise AssertionError("a NISS appears in the logs of the gateway or the simulator")

    def stop(self):
        for p in (self.gateway, self.simulator):
            if p is not None:
                p.terminate()
