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
import secrets
import signal
import ssl
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
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
                 max_attempts=8, breaker_threshold=1000, simulator_args=None):
        self.build = os.path.abspath(build)
        self.shared = os.path.abspath(shared)
        self.work = os.path.abspath(work)
        self.insurers = insurers or UNIONS
        self.retry_base_ms = retry_base_ms
        self.retry_cap_ms = retry_cap_ms
        self.max_attempts = max_attempts
        self.breaker_threshold = breaker_threshold
        self.simulator_args = simulator_args or []
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
                      "signing_chain_file = " + q(self.pem(name + "-chain.pem"))]
        for code in self.insurers:
            lines += ["", "[insurers.%s]" % code,
                      'name = "Simulated insurer %s"' % code,
                      'enrolment_url = "https://127.0.0.1:%d/insurers/%s/mhm"' % (self.sim_port, code),
                      "client_key_file = " + q(self.pem("gateway.key")),
                      "client_cert_file = " + q(self.pem("gateway-fullchain.pem")),
                      "ca_file = " + q(self.pem("ca.pem")),
                      "connect_timeout_ms = 2000", "request_timeout_ms = 3000", "max_in_flight = 2",
                      "[insurers.%s.retry]" % code,
                      "base_ms = %d" % self.retry_base_ms, "cap_ms = %d" % self.retry_cap_ms,
                      "max_attempts = %d" % self.max_attempts, "max_age_hours = 48",
                      "[insurers.%s.breaker]" % code,
                      "failure_threshold = %d" % self.breaker_threshold, "open_ms = 200",
                      "half_open_probes = 1"]
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

    def stop(self):
        for p in (self.gateway, self.simulator):
            if p is not None:
                p.terminate()
