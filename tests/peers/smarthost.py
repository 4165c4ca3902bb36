#!/usr/bin/env python3
"""A smarthost for tests: aiosmtpd on 127.0.0.1 that requires STARTTLS before anything and AUTH
(PLAIN or LOGIN, one user) before MAIL, and writes each message it accepts to OUT/<n>.eml with
the authenticated user in OUT/<n>.auth. Runs until killed.

  smarthost.py PORT CERT KEY OUT USER PASSWORD
"""
import asyncio
import os
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Keep:
    def __init__(self, out):
        self.out = out
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        base = os.path.join(self.out, f"{self.count:04}")
        with open(base + ".tmp", "wb") as f:
            f.write(envelope.original_content)
        with open(base + ".auth", "w") as f:
            f.write(getattr(session, "login_user", ""))
        os.rename(base + ".tmp", base + ".eml")
        return "250 2.0.0 kept"


def main():
    port, cert, key, out, user, password = sys.argv[1:7]
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == user.encode() \
            and auth_data.password == password.encode()
        if ok:
            session.login_user = auth_data.login.decode()
        return AuthResult(success=ok, handled=False)

    controller = Controller(
        Keep(out),
        hostname="127.0.0.1",
        port=int(port),
        tls_context=context,
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
        authenticator=authenticate,
    )
    controller.start()
    try:
        asyncio.get_event_loop().run_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
