#!/usr/bin/env python3
"""A fax/SMS gateway for tests: an HTTP server on 127.0.0.1 that records each POST (its
Authorization header and JSON body) as OUT/<n>.json, answering 503 to the first FAIL requests
and 202 after. Runs until killed.

  gateway.py PORT OUT FAIL
"""
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


def main():
    port, out, fail = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    seen = {"n": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            seen["n"] += 1
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(min(length, 1 << 20))
            if seen["n"] <= fail:
                self.send_response(503)
                self.end_headers()
                self.wfile.write(b"busy")
                return
            record = {
                "authorization": self.headers.get("Authorization"),
                "content_type": self.headers.get("Content-Type"),
                "body": json.loads(body),
            }
            path = os.path.join(out, f"{seen['n']:04}")
            with open(path + ".tmp", "w") as f:
                json.dump(record, f)
            os.rename(path + ".tmp", path + ".json")
            self.send_response(202)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"status": "queued"}')

        def log_message(self, *args):
            pass

    HTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
