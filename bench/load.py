#!/usr/bin/env python3
"""SMTP load for bench/relay.sh: N messages over C parallel sessions, each session sending its share
one after another (as smtp-source does) on one connection or on a connection per message,
optionally with STARTTLS (and AUTH PLAIN) (hisp's submission port requires both; smtp-source can do
neither). Prints the seconds the submissions took and the CPU seconds the generator itself used
(user + system), so that its share of the machine can be told apart from the system's under test."""
import argparse, resource, smtplib, socket, ssl, sys, threading, time

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, required=True)
p.add_argument("--count", type=int, required=True)
p.add_argument("--sessions", type=int, default=8)
p.add_argument("--size", type=int, default=1024)
p.add_argument("--sender", required=True)
p.add_argument("--recipient", required=True)
p.add_argument("--tls-auth", metavar="PASSWORD")
p.add_argument("--tls", action="store_true", help="STARTTLS without AUTH")
p.add_argument("--tag", default="run", help="makes the Message-IDs of this run unique")
p.add_argument("--connection-per-message", action="store_true",
               help="a new connection (and STARTTLS and AUTH) for every message, as some EHRs do")
a = p.parse_args()

filler = ("Lorem ipsum dolor sit amet, C-CDA referral note body line for the relay benchmark.\r\n" * (a.size // 80 + 1))[: a.size]
failed = []
# One client TLS context for every session, as a mail client keeps one (making one loads the
# system's CA store: milliseconds of the load generator's CPU per connection).
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

def connect():
    s = smtplib.SMTP("127.0.0.1", a.port, timeout=120)
    # As a mail client should: a message written as several TLS records must not wait for the
    # server's delayed ACK of the one before (40 ms a message against a server that does not ask
    # its kernel to acknowledge at once, as Postfix's smtpd does not).
    s.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.ehlo("load.bench.test")
    if a.tls_auth or a.tls:
        s.starttls(context=ctx)
        s.ehlo("load.bench.test")
    if a.tls_auth:
        s.login(a.sender, a.tls_auth)
    return s

def message(i):
    return (f"From: {a.sender}\r\nTo: {a.recipient}\r\nSubject: load {i}\r\n"
            f"Message-ID: <load-{a.tag}-{i}@bench.test>\r\n\r\n{filler}").encode()

def session(first, count):
    try:
        s = None
        for i in range(first, first + count):
            s = s or connect()
            s.sendmail(a.sender, [a.recipient], message(i))
            if a.connection_per_message:
                s.quit()
                s = None
        if s:
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
used = resource.getrusage(resource.RUSAGE_SELF)
print(f"{time.monotonic() - start:.3f} {used.ru_utime + used.ru_stime:.3f}")
if failed:
    print("failures: " + "; ".join(failed[:3]), file=sys.stderr)
    sys.exit(1)
