#!/usr/bin/env python3
"""A peer MX for tests: aiosmtpd on 127.0.0.1 that writes one line per session event to LOG
("open N", "quit N", "close N", "refused-rcpt N") so a test can see whether its client ended every
session with QUIT. MODE is "tls" (STARTTLS offered), "plain" (no STARTTLS) or "refuse-starttls"
(STARTTLS offered, answered 454). A recipient whose local part starts with "refused" gets
550 5.1.1; other messages are accepted and dropped. Runs until killed.

  mx_recorder.py PORT CERT KEY LOG MODE
"""
import asyncio
import itertools
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

LOG = None
NUMBERS = itertools.count(1)


def record(line):
    with open(LOG, "a") as f:
        f.write(line + "\n")


class Recording(SMTP):
    def __init__(self, *args, refuse_starttls=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.number = None
        self.refuse_starttls = refuse_starttls

    def connection_made(self, transport):
        if self.number is None:  # again after STARTTLS, on the same session
            self.number = next(NUMBERS)
            record(f"open {self.number}")
        super().connection_made(transport)

    def connection_lost(self, error):
        record(f"close {self.number}")
        super().connection_lost(error)

    async def smtp_EHLO(self, arg):
        record(f"ehlo {self.number}")
        await super().smtp_EHLO(arg)

    async def smtp_QUIT(self, arg):
        record(f"quit {self.number}")
        await super().smtp_QUIT(arg)

    async def smtp_STARTTLS(self, arg):
        if self.refuse_starttls:
            await self.push("454 4.7.0 TLS not available now")
            return
        await super().smtp_STARTTLS(arg)


class Handler:
    async def handle_RCPT(self, server, session, envelope, address, options):
        if address.split("@")[0].startswith("refused"):
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        return "250 2.0.0 accepted"


class Recorder(Controller):
    def __init__(self, handler, mode, **kwargs):
        self.mode = mode
        super().__init__(handler, **kwargs)

    def factory(self):
        return Recording(self.handler, refuse_starttls=self.mode == "refuse-starttls", **self.SMTP_kwargs)


def main():
    global LOG
    port, cert, key, LOG, mode = sys.argv[1:6]
    context = None
    if mode != "plain":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
    controller = Recorder(Handler(), mode, hostname="127.0.0.1", port=int(port), tls_context=context)
    controller.start()
    try:
        asyncio.get_event_loop().run_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
