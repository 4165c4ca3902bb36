#!/usr/bin/env python3
"""A node that serves a large HISP (issue 27): for stores of 10^3, 10^5 and 1.6x10^6 addresses over
up to 2,000 practices, p50/p99 of what peers, EHRs and users wait for, and the ratio of each
figure to the smallest store's. Target: every figure at 1.6 million within 2x of the one at 1,000.

    python3 bench/scale.py [SIZES...]      (default: 1000 100000 1600000; HISP_BIN=PATH for a build)

Each store is made the way an operator makes one: `hisp address import` of a CSV file (the
practices and domains it names are created), one address in 1,600 with a certificate from the
development CA (`certificate=issue`), the development CA as every domain's anchor and every
practice proofed (inserted in SQL, as an operator's scripts would through the CLI, once per domain
and practice). Then `hisp serve` runs with its DNS publisher, submission port and API on 127.0.0.1,
and this script measures, one request at a time:

  dns cert (address)  a CERT question for a certificate holder's address (UDP)
  dns cert (domain)   a CERT question for a hosted domain (UDP)
  auth (warm)         AUTH PLAIN of a user who logged in lately, after STARTTLS
  rcpt                RCPT TO of a hosted address
  local delivery      from MAIL FROM to the file in the recipient's Maildir (submitted, signed,
                      encrypted, opened and verified on the same node)
  after a change      the same, for the first message after `hisp address add` elsewhere
  GET /v1/practice    the practice of the caller's token (ten addresses in every store)
  directory search    GET /v1/directory?q= a user's name
and the daemon's resident memory (VmRSS) and its peak (VmHWM) at the end, and the import's rate.
"""
import base64, http.client, json, os, random, smtplib, socket, ssl, statistics, struct, subprocess
import sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZES = [int(s) for s in sys.argv[1:]] or [1000, 100_000, 1_600_000]
CERT_EVERY = 1600
PASSWORD = "bench password of a user"
SAMPLES = int(os.environ.get("SAMPLES", "300"))
random.seed(27)


def hisp_binary():
    if os.environ.get("HISP_BIN"):
        return os.environ["HISP_BIN"]
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "hisp"], cwd=ROOT, check=True)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return os.path.join(target, "release", "hisp")


HISP = hisp_binary()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def percentiles(samples):
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return p50 * 1000, p99 * 1000  # milliseconds


class Node:
    def __init__(self, size):
        self.size = size
        self.practices = max(1, min(2000, size // 10))
        self.dir = tempfile.mkdtemp(prefix=f"hisp-scale-{size}-")
        self.ports = {k: free_port() for k in ("submission", "backbone", "dns", "api", "http")}
        self.mail = os.path.join(self.dir, "mail")
        self.config = os.path.join(self.dir, "hisp.toml")
        with open(self.config, "w") as f:
            f.write(f"""[ca]
base_url = "http://127.0.0.1:{self.ports['http']}"
[server]
hostname = "mx.bench.test"
submission = "127.0.0.1:{self.ports['submission']}"
backbone = "127.0.0.1:{self.ports['backbone']}"
http = "127.0.0.1:{self.ports['http']}"
mail_dir = "{self.mail}"
min_free_disk_mb = 0
[dns]
servers = ["127.0.0.1:{self.ports['dns']}"]
[dns_server]
listen = "127.0.0.1:{self.ports['dns']}"
mx_host = "mx.bench.test"
[http]
listen = "127.0.0.1:{self.ports['api']}"
[queue]
workers = 4
""")
        self.env = dict(os.environ, HISP_CONFIG=self.config, HISP_DB=os.path.join(self.dir, "hisp.db"),
                        HISP_KEK="bench-kek-of-the-scale-node-0123456789")
        self.daemon = None

    def run(self, *args, stdin=None):
        out = subprocess.run([HISP, *args], env=self.env, input=stdin, capture_output=True, text=True)
        if out.returncode not in (0, 1):
            sys.exit(f"hisp {' '.join(args)}: {out.stderr}")
        return out

    def domain(self, i):
        return f"p{i % self.practices}.bench.test"

    def address(self, i):
        return f"u{i}@{self.domain(i)}"

    def build(self):
        self.run("init")
        self.run("ca", "init")
        ca = os.path.join(self.dir, "ca.pem")
        self.run("ca", "export", "--out", ca)
        # The practices and their domains first (one address each), proofed and trusting the CA,
        # so that the certificates of the main import can be issued.
        first = os.path.join(self.dir, "domains.csv")
        with open(first, "w") as f:
            f.write("address,practice\n")
            for i in range(self.practices):
                f.write(f"{self.address(i)},Practice {i}\n")
            # The practice the EHR's token acts for: ten addresses in every store, so that
            # GET /v1/practice (which lists them) answers the same in each.
            for k in range(10):
                f.write(f"staff{k}@clinic.bench.test,Bench Clinic\n")
        self.run("address", "import", first)
        self.run("anchor", "add", ca, "--domain", self.domain(0), "--incoming", "--outgoing")
        db = self.env["HISP_DB"]
        now = int(time.time())
        sql = f"""
            INSERT INTO proofing (practice_id, state, version, sealed, reasons, decided_by, decided_at, updated_at)
              SELECT id, 'verified', 1, NULL, '[]', 'bench', {now}, {now} FROM practices;
            INSERT INTO anchors (domain_id, subject, sha256, not_after, incoming, outgoing, der)
              SELECT d.id, a.subject, a.sha256, a.not_after, 1, 1, a.der FROM domains d, anchors a
              WHERE d.id != a.domain_id;"""
        subprocess.run(["python3", "-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()",
                        db, sql], check=True)
        main = os.path.join(self.dir, "addresses.csv")
        self.holders = []
        with open(main, "w") as f:
            f.write("address,certificate\n")
            for i in range(self.practices, self.size):
                cert = i % CERT_EVERY == 0 or len(self.holders) < 12 and i % 97 == 0
                if cert:
                    self.holders.append(i)
                f.write(f"{self.address(i)},{'issue' if cert else ''}\n")
        started = time.time()
        out = self.run("--json", "address", "import", main, "--batch", "10000")
        took = time.time() - started
        report = json.loads(out.stdout)
        if report["refused"]:
            sys.exit(f"import refused rows: {report['refused'][:5]}")
        self.import_rate = (self.size - self.practices) / took
        self.certificates = report["certificates_issued"]
        # Senders and recipients: certificate holders of different practices, with passwords.
        self.users = self.holders[:12]
        for i in self.users:
            self.run("address", "passwd", self.address(i), "--password-stdin", stdin=PASSWORD + "\n")
        self.token = json.loads(self.run("--json", "token", "create", "bench-ehr", "--practice",
                                         "clinic.bench.test").stdout)["token"]
        self.db_bytes = os.path.getsize(db)

    def serve(self):
        self.daemon = subprocess.Popen([HISP, "serve"], env=self.env, stdout=subprocess.DEVNULL,
                                       stderr=open(os.path.join(self.dir, "serve.log"), "w"))
        for port in ("submission", "api"):
            for _ in range(400):
                try:
                    socket.create_connection(("127.0.0.1", self.ports[port]), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.05)
            else:
                sys.exit(f"hisp serve does not listen on {port}: see {self.dir}/serve.log")

    def memory(self):
        fields = {}
        with open(f"/proc/{self.daemon.pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024

    def stop(self):
        if self.daemon:
            self.daemon.terminate()
            self.daemon.wait(60)
        subprocess.run(["rm", "-rf", self.dir])


def dns_question(name, qtype=37):
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack(">HHHHHH", random.randrange(65536), 0x0100, 1, 0, 0, 0) + labels + struct.pack(">HH", qtype, 1)


def time_dns(node, names):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(30)
    samples = []
    for name in names:
        query = dns_question(name)
        started = time.perf_counter()
        sock.sendto(query, ("127.0.0.1", node.ports["dns"]))
        answer = sock.recv(4096)
        samples.append(time.perf_counter() - started)
        if answer[:2] != query[:2] or answer[3] & 0x0F not in (0, 3):
            sys.exit(f"DNS answer for {name}: rcode {answer[3] & 0x0F}")
    return samples


TLS = ssl.create_default_context()
TLS.check_hostname = False
TLS.verify_mode = ssl.CERT_NONE


def smtp(node, user):
    s = smtplib.SMTP("127.0.0.1", node.ports["submission"], timeout=120)
    s.ehlo("scale.bench.test")
    s.starttls(context=TLS)
    s.ehlo("scale.bench.test")
    if user:
        s.login(user, PASSWORD)
    return s


def time_auth(node):
    users = [node.address(i) for i in node.users]
    for user in users:  # cold: argon2id once each
        smtp(node, user).quit()
    samples = []
    for n in range(SAMPLES // 3):
        s = smtp(node, None)
        user = users[n % len(users)]
        started = time.perf_counter()
        s.login(user, PASSWORD)
        samples.append(time.perf_counter() - started)
        s.quit()
    return samples


def time_rcpt(node):
    s = smtp(node, node.address(node.users[0]))
    samples = []
    for _ in range(SAMPLES):
        s.mail(node.address(node.users[0]))
        recipient = node.address(random.randrange(node.size))
        started = time.perf_counter()
        code, _ = s.rcpt(recipient)
        samples.append(time.perf_counter() - started)
        if code != 250:
            sys.exit(f"RCPT {recipient}: {code}")
        s.rset()
    s.quit()
    return samples


def maildir_count(node, address):
    user, domain = address.split("@")
    path = os.path.join(node.mail, domain, user, "new")
    try:
        return len(os.listdir(path))
    except FileNotFoundError:
        return 0


def deliver_one(node, s, sender, recipient, n):
    """From MAIL FROM until the file is in the Maildir: submission (the intake seals the message
    into the queue) and the worker's whole processing."""
    before = maildir_count(node, recipient)
    body = (f"From: {sender}\r\nTo: {recipient}\r\nSubject: scale {n}\r\n"
            f"Message-ID: <scale-{node.size}-{n}-{random.random()}@bench.test>\r\n\r\nA referral note.\r\n")
    started = time.perf_counter()
    s.sendmail(sender, [recipient], body)
    deadline = started + 60
    while maildir_count(node, recipient) == before:
        if time.perf_counter() > deadline:
            sys.exit(f"no delivery to {recipient} in 60 s: see {node.dir}/serve.log")
        time.sleep(0.001)
    return time.perf_counter() - started


def time_delivery(node, count, change_first=False):
    sender = node.address(node.users[0])
    s = smtp(node, sender)
    samples = []
    for n in range(count):
        recipient = node.address(node.users[1 + n % (len(node.users) - 1)])
        if change_first:
            node.run("address", "add", f"added{n}@{node.domain(random.randrange(node.practices))}")
        samples.append(deliver_one(node, s, sender, recipient, f"{'c' if change_first else 'd'}{n}"))
    s.quit()
    return samples


def time_api(node, path_of, count):
    conn = http.client.HTTPSConnection("127.0.0.1", node.ports["api"], context=TLS, timeout=60)
    samples = []
    for n in range(count):
        path = path_of(n)
        started = time.perf_counter()
        conn.request("GET", path, headers={"Authorization": f"Bearer {node.token}"})
        response = conn.getresponse()
        response.read()
        samples.append(time.perf_counter() - started)
        if response.status != 200:
            sys.exit(f"GET {path}: {response.status}")
    conn.close()
    return samples


def measure(size):
    node = Node(size)
    try:
        started = time.time()
        node.build()
        built = time.time() - started
        node.serve()
        holders = [node.address(i) for i in node.holders]
        figures = {}
        figures["dns cert (address)"] = percentiles(time_dns(node, [
            a.replace("@", ".") for a in (random.choice(holders) for _ in range(SAMPLES))]))
        figures["dns cert (domain)"] = percentiles(time_dns(node, [
            node.domain(random.randrange(node.practices)) for _ in range(SAMPLES)]))
        figures["auth (warm)"] = percentiles(time_auth(node))
        figures["rcpt"] = percentiles(time_rcpt(node))
        time_delivery(node, 5)  # warm the workers
        figures["local delivery"] = percentiles(time_delivery(node, SAMPLES // 6))
        figures["after a change"] = percentiles(time_delivery(node, SAMPLES // 15, change_first=True))
        figures["GET /v1/practice"] = percentiles(time_api(node, lambda n: "/v1/practice", SAMPLES // 3))
        figures["directory search"] = percentiles(time_api(
            node, lambda n: f"/v1/directory?q=u{random.randrange(node.size)}", SAMPLES // 3))
        rss, peak = node.memory()
        print(f"\n{size:,} addresses, {node.practices:,} practices, {node.certificates:,} certificates: "
              f"store built in {built:.0f} s (import {node.import_rate:,.0f} rows/s), "
              f"database {node.db_bytes / 2**20:,.0f} MiB")
        print(f"  {'':22} {'p50 ms':>9} {'p99 ms':>9}")
        for name, (p50, p99) in figures.items():
            print(f"  {name:22} {p50:9.2f} {p99:9.2f}")
        print(f"  {'RSS / peak MiB':22} {rss:9.1f} {peak:9.1f}")
        figures["rss MiB"] = (rss, peak)
        sys.stdout.flush()
        return figures
    finally:
        node.stop()


results = {size: measure(size) for size in SIZES}
smallest, largest = SIZES[0], SIZES[-1]
print(f"\nratio of {largest:,} addresses to {smallest:,} (target: every figure within 2x)")
worst = 0
for name in results[smallest]:
    r50 = results[largest][name][0] / results[smallest][name][0]
    r99 = results[largest][name][1] / results[smallest][name][1]
    worst = max(worst, r50)
    print(f"  {name:22} p50 {r50:5.2f}x   p99 {r99:5.2f}x")
print(f"worst p50 ratio: {worst:.2f}x")
