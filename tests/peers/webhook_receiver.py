#!/usr/bin/env python3
"""An EHR's webhook endpoint for tests: an HTTPS server on 127.0.0.1 that checks each POST's
Hisp-Signature (HMAC-SHA256 of "<t>.<body>" under the secret in SECRETS/<path>-<Hisp-Webhook>,
written there by the test once it registered the webhook at https://127.0.0.1:PORT/<path>) and records it as OUT/<n>.json: its headers,
its JSON body and whether the signature held. Answers 503 to the first FAIL requests, 401 to a
bad signature, 204 otherwise. Runs until killed.

  webhook_receiver.py PORT CERT KEY SECRETS OUT FAIL
"""
import hashlib
import hmac
import json
import os
import ssl
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


def valid(secrets, name, signature, body):
    try:
        with open(os.path.join(secrets, os.path.basename(name))) as f:
            secret = f.read().strip()
        fields = dict(part.split("=", 1) for part in signature.split(","))
        expected = hmac.new(secret.encode(), fields["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, fields["v1"])
    except (OSError, KeyError, ValueError):
        return False


def main():
    port, cert, key, secrets, out, fail = sys.argv[1:7]
    fail = int(fail)
    seen = {"n": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            seen["n"] += 1
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(min(length, 1 << 20))
            name = self.path.strip("/") + "-" + self.headers.get("Hisp-Webhook", "")
            signed = valid(secrets, name, self.headers.get("Hisp-Signature", ""), body)
            status = 503 if seen["n"] <= fail else (204 if signed else 401)
            record = {
                "answered": status,
                "signature_valid": signed,
                "event": self.headers.get("Hisp-Event"),
                "delivery": self.headers.get("Hisp-Delivery"),
                "webhook": name,
                "body": json.loads(body),
            }
            path = os.path.join(out, f"{seen['n']:04}")
            with open(path + ".tmp", "w") as f:
                json.dump(record, f)
            os.rename(path + ".tmp", path + ".json")
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", int(port)), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
