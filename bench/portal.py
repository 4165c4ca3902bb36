#!/usr/bin/env python3
"""Portal benchmark (issue 23): signing in and the inbox page under concurrent sessions, with wrk
from Debian. A node with the portal on 127.0.0.1 is set up in a temporary directory: a practice,
two members, MESSAGES secure messages from one to the other (sent through the portal itself), and
SESSIONS signed-in sessions of the recipient. Then, each for DURATION seconds with CONNECTIONS connections:

  reference  GET /assets/portal.css: the same TLS, HTTP and header path, no session, no store
  inbox      GET /messages: the session found and checked, the inbox read and opened from its
             seal (MESSAGES lines), the page rendered; the sessions taken in turn
  sign-in    POST /sign-in: the form token checked, argon2id (m=19 MiB, t=2) over the password,
             the new session stored

It prints requests per second, p50 and p99 latency for each, and each page's rate as a ratio of
the reference measured in the same run.

    python3 bench/portal.py      (DURATION=10 CONNECTIONS=16 SESSIONS=16 MESSAGES=200; HISP_BIN=PATH
                                  measures another build)
"""

import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DURATION = int(os.environ.get("DURATION", "10"))
CONNECTIONS = int(os.environ.get("CONNECTIONS", "16"))
SESSIONS = int(os.environ.get("SESSIONS", "16"))
MESSAGES = int(os.environ.get("MESSAGES", "200"))
PASSWORD = "tulip kettle orbit mauve"
KEK = "bench-kek-0123456789abcdef"


def hisp_binary():
    if os.environ.get("HISP_BIN"):
        return os.environ["HISP_BIN"]
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "hisp"], cwd=ROOT, check=True)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return os.path.join(target, "release", "hisp")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Browser:
    """One cookie jar over HTTPS to the portal (the node's certificate is self-signed)."""

    def __init__(self, port):
        self.port = port
        self.cookie = None
        self.context = ssl._create_unverified_context()

    def call(self, method, path, body=None, headers=None):
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context, timeout=30)
        headers = dict(headers or {})
        if self.cookie:
            headers["Cookie"] = f"__Host-hisp={self.cookie}"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read().decode("utf-8", "replace")
        for value in response.headers.get_all("Set-Cookie") or []:
            m = re.match(r"__Host-hisp=([^;]*)", value)
            if m:
                self.cookie = m.group(1) or None
        conn.close()
        return response.status, response.headers, data

    def csrf(self, path):
        _, _, page = self.call("GET", path)
        return re.search(r'name="csrf" value="([^"]+)"', page).group(1)

    def post(self, path, fields):
        body = urllib.parse.urlencode(fields)
        return self.call("POST", path, body, {"Content-Type": "application/x-www-form-urlencoded"})

    def sign_in(self, email):
        status, headers, _ = self.post("/sign-in", {"csrf": self.csrf("/sign-in"), "email": email, "password": PASSWORD})
        assert status == 303 and headers["Location"] == "/", (status, dict(headers))

    def send(self, to, subject):
        boundary = "benchboundary"
        parts = [("csrf", self.csrf("/messages/new")), ("to", str(to)), ("subject", subject), ("body", "A message.")]
        body = "".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n' for k, v in parts)
        body += f"--{boundary}--\r\n"
        status, _, _ = self.call("POST", "/messages", body.encode(), {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        assert status == 303, status


def wrk(port, script, path, work):
    lua = os.path.join(work, "wrk.lua")
    with open(lua, "w") as f:
        f.write(script)
    out = subprocess.run(
        ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{DURATION}s", "--latency", "-s", lua, f"https://127.0.0.1:{port}{path}"],
        check=True, capture_output=True, text=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    latency = {p: re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out) for p in ("50", "99")}
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    ms = {p: float(m.group(1)) * scale[m.group(2)] for p, m in latency.items()}
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return rps, ms["50"], ms["99"], int(bad.group(1)) if bad else 0, errors.group(1) if errors else ""


def main():
    hisp = hisp_binary()
    work = tempfile.mkdtemp(prefix="hisp-portal-bench-")
    port = free_port()
    config = os.path.join(work, "hisp.toml")
    with open(config, "w") as f:
        f.write(
            f'[server]\nhostname = "hisp.bench"\nsubmission = ""\nbackbone = ""\nmail_dir = "{work}/mail"\n'
            f'min_free_disk_mb = 0\n[portal]\nlisten = "127.0.0.1:{port}"\npublic_url = "https://portal.bench"\n'
        )
    env = dict(os.environ, HISP_DB=f"{work}/data/hisp.db", HISP_KEK=KEK, HISP_CONFIG=config, HISP_LOG="warn")

    def cli(*args):
        out = subprocess.run([hisp, "--json", *args], env=env, check=True, capture_output=True, text=True).stdout
        return json.loads(out) if out.strip().startswith("{") else out

    subprocess.run([hisp, "init"], env=env, check=True, capture_output=True)
    cli("practice", "add", "Elm Clinic", "--domain", "elm.bench")
    links = {}
    for name, email in (("Ada Lovelace", "ada@elm.bench"), ("Grace Hopper", "grace@elm.bench")):
        added = cli("account", "add", "--practice", "Elm Clinic", "--name", name, "--email", email, "--print-link")
        links[email] = (added["account"]["id"], added["link"].split("token=")[1])
    log = open(os.path.join(work, "serve.log"), "w")
    node = subprocess.Popen([hisp, "serve"], env=env, stdout=log, stderr=log)
    try:
        deadline = time.time() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.time() < deadline, "the portal listens"
                time.sleep(0.05)
        for email, (_, token) in links.items():
            b = Browser(port)
            csrf = b.csrf(f"/password?token={token}")
            status, _, _ = b.post("/password", {"csrf": csrf, "token": token, "password": PASSWORD, "confirm": PASSWORD})
            assert status == 303, status
        sender = Browser(port)
        sender.sign_in("ada@elm.bench")
        for n in range(MESSAGES):
            sender.send(links["grace@elm.bench"][0], f"Referral {n}")
        cookies = []
        for _ in range(SESSIONS):
            b = Browser(port)
            b.sign_in("grace@elm.bench")
            cookies.append(b.cookie)
        status, _, page = Browser(port).call("GET", "/messages", headers={"Cookie": f"__Host-hisp={cookies[0]}"})
        assert status == 200 and page.count("<li") >= MESSAGES, (status, page[:300])

        anonymous = Browser(port)
        csrf = anonymous.csrf("/sign-in")
        form = urllib.parse.urlencode({"csrf": csrf, "email": "grace@elm.bench", "password": PASSWORD})
        lua_cookies = ", ".join(f'"{c}"' for c in cookies)
        runs = [
            ("reference", "/assets/portal.css", ""),
            (
                "inbox",
                "/messages",
                f"local cookies = {{{lua_cookies}}}\nlocal i = 0\n"
                "request = function()\n  i = i + 1\n"
                '  return wrk.format("GET", "/messages", {["Cookie"] = "__Host-hisp=" .. cookies[(i % #cookies) + 1]})\nend\n',
            ),
            (
                "sign-in",
                "/sign-in",
                f'wrk.method = "POST"\nwrk.body = "{form}"\n'
                'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
                f'wrk.headers["Cookie"] = "__Host-hisp={anonymous.cookie}"\n',
            ),
        ]
        results = {}
        for name, path, script in runs:
            results[name] = wrk(port, script or "-- a plain GET\n", path, work)
        reference = results["reference"][0]
        print(f"portal benchmark: {DURATION} s each, {CONNECTIONS} connections (wrk -t2), {SESSIONS} sessions, "
              f"{MESSAGES} messages in the inbox")
        print(f"{'page':10} {'req/s':>10} {'p50 ms':>9} {'p99 ms':>9} {'ratio':>8}  failures")
        for name, (rps, p50, p99, bad, errors) in results.items():
            print(f"{name:10} {rps:10.1f} {p50:9.2f} {p99:9.2f} {rps / reference:8.4f}  {bad} non-2xx/3xx {errors}")
        if any(r[3] for r in results.values()):
            sys.exit("some answers failed")
    finally:
        node.terminate()
        node.wait(timeout=30)


if __name__ == "__main__":
    main()
