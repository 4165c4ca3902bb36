#!/usr/bin/env python3
"""SMTP load for bench/relay.sh: N messages over C parallel sessions, each session sending its share
one after another (as smtp-source does), optionally with STARTTLS and AUTH PLAIN (hisp's submission
port requires both; smtp-source can do neither). Prints the seconds the submissions took."""
import argparse, smtplib, ssl, sys, threading, time

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, required=True)
p.add_argument("--count", type=int, required=True)
p.add_argument("--sessions", type=int, default=8)
p.add_argument("--size", type=int, default=1024)
p.add_argument("--sender", required=True)
p.add_argument("--recipient", required=True)
p.add_argument("--tls-auth", metavar="PASSWORD")
p.add_argument("--tag", default="run", help="makes the Message-IDs of this run unique")
a = p.parse_args()

filler = ("Lorem ipsum dolor sit amet, C-CDA referral note body line for the relay benchmark.\r\n" * (a.size // 80 + 1))[: a.size]
failed = []

def session(first, count):
    try:
        s = smtplib.SMTP("127.0.0.1", a.port, timeout=120)
        s.ehlo("load.bench.test")
        if a.tls_auth:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            s.starttls(context=ctx)
            s.ehlo("load.bench.test")
            s.login(a.sender, a.tls_auth)
        for i in range(first, first + count):
            msg = (f"From: {a.sender}\r\nTo: {a.recipient}\r\nSubject: load {i}\r\n"
                   f"Message-ID: <load-{a.tag}-{i}@bench.test>\r\n\r\n{filler}")
            s.sendmail(a.sender, [a.recipient], msg.encode())
        s.quit()
    except Exception as e:  # report, never hide: the benchmark counts what arrives
        failed.append(repr(e))

per = [a.count // a.sessions + (1 if i < a.count % a.sessions else 0) for i in range(a.sessions)]
threads, first = [], 0
start = time.monotonic()
for n in per:
    t = threading.Thread(target=session, args=(first, n))
    first += n
    t.start()
    threads.append(t)
for t in threads:
    t.join()
print(f"{time.monotonic() - start:.3f}")
if failed:
    print("failures: " + "; ".join(failed[:3]), file=sys.stderr)
    sys.exit(1)
