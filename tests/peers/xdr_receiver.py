#!/usr/bin/env python3
"""An EHR's XDR endpoint for tests, written from ITI-41 without hisp's code: HTTPS on 127.0.0.1
that requires a client certificate signed by (or equal to) CLIENT_CA, takes POST /xdr as an MTOM
package (Python's email parser), and checks the request: SOAP 1.2, the ProvideAndRegister action,
a Direct addressBlock, a DocumentEntry per xdsb:Document, each xop:Include resolving to a part,
and each part's SHA-1 and size matching its metadata when given. It writes OUT/<n>.json (what it
found) and OUT/<n>.doc<k> (each document), then answers a RegistryResponse of status Success, or
Failure with what was wrong. Runs until killed.

  xdr_receiver.py PORT CERT KEY CLIENT_CA OUT
"""
import email
import email.policy
import hashlib
import http.server
import json
import os
import ssl
import sys
import xml.etree.ElementTree as ET

SOAP = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://www.w3.org/2005/08/addressing"
XDSB = "urn:ihe:iti:xds-b:2007"
XOP = "http://www.w3.org/2004/08/xop/include"
RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
DIRECT = "urn:direct:addressing"
COUNT = [0]


def answer(status, problems):
    errors = "".join(
        f'<rs:RegistryError errorCode="XDSRegistryMetadataError" codeContext="{p}" '
        f'severity="urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"/>' for p in problems)
    listing = f"<rs:RegistryErrorList>{errors}</rs:RegistryErrorList>" if problems else ""
    return (f'<soap:Envelope xmlns:soap="{SOAP}" xmlns:wsa="{WSA}"><soap:Header>'
            f'<wsa:Action>urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-bResponse</wsa:Action></soap:Header>'
            f'<soap:Body><rs:RegistryResponse xmlns:rs="urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0" '
            f'status="urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:{status}">{listing}'
            f'</rs:RegistryResponse></soap:Body></soap:Envelope>').encode()


def check(content_type, body):
    problems = []
    message = email.message_from_bytes(
        b"Content-Type: " + content_type.encode() + b"\r\nMIME-Version: 1.0\r\n\r\n" + body, policy=email.policy.HTTP)
    parts = {}
    root = None
    for part in message.iter_parts():
        cid = (part.get("Content-ID") or "").strip("<>")
        payload = part.get_payload(decode=True)
        if root is None:
            root = payload
        else:
            parts[cid] = payload
    if root is None:
        return ["no MTOM root part"], {}
    envelope = ET.fromstring(root)
    header = envelope.find(f"{{{SOAP}}}Header")
    action = header.find(f"{{{WSA}}}Action").text.strip()
    if action != "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b":
        problems.append(f"action {action}")
    block = header.find(f"{{{DIRECT}}}addressBlock")
    found = {"from": None, "to": [], "documents": []}
    if block is None:
        problems.append("no addressBlock")
    else:
        found["from"] = block.find(f"{{{DIRECT}}}from").text
        found["to"] = [t.text for t in block.findall(f"{{{DIRECT}}}to")]
    request = envelope.find(f"{{{SOAP}}}Body/{{{XDSB}}}ProvideAndRegisterDocumentSetRequest")
    entries = {e.get("id"): e for e in request.iter(f"{{{RIM}}}ExtrinsicObject")}
    for document in request.findall(f"{{{XDSB}}}Document"):
        did = document.get("id")
        entry = entries.pop(did, None)
        if entry is None:
            problems.append(f"document {did} has no DocumentEntry")
            continue
        include = document.find(f"{{{XOP}}}Include")
        cid = include.get("href")[len("cid:"):]
        content = parts.get(cid)
        if content is None:
            problems.append(f"{cid} is not a part")
            continue
        slots = {s.get("name"): [v.text for v in s.iter(f"{{{RIM}}}Value")] for s in entry.findall(f"{{{RIM}}}Slot")}
        if slots.get("hash") and slots["hash"][0] != hashlib.sha1(content).hexdigest():
            problems.append(f"{did}: hash")
        if slots.get("size") and slots["size"][0] != str(len(content)):
            problems.append(f"{did}: size")
        name = entry.find(f"{{{RIM}}}Name/{{{RIM}}}LocalizedString")
        found["documents"].append({"id": did, "mimeType": entry.get("mimeType"), "size": len(content),
                                   "title": name.get("value") if name is not None else None, "content": content})
    for did in entries:
        problems.append(f"DocumentEntry {did} has no document")
    return problems, found


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        try:
            problems, found = check(self.headers.get("Content-Type", ""), body)
        except Exception as e:  # a request this reader cannot take is answered, not crashed on
            problems, found = [f"unreadable: {e}"], {}
        COUNT[0] += 1
        base = os.path.join(OUT, f"{COUNT[0]:04}")
        documents = found.get("documents", [])
        for k, d in enumerate(documents):
            with open(f"{base}.doc{k}", "wb") as f:
                f.write(d.pop("content"))
        found["problems"] = problems
        found["client"] = self.connection.getpeercert().get("subject") if self.connection.getpeercert() else None
        with open(base + ".tmp", "w") as f:
            json.dump(found, f, default=str)
        os.rename(base + ".tmp", base + ".json")
        reply = answer("Failure" if problems else "Success", problems)
        self.send_response(200)
        self.send_header("Content-Type", "application/soap+xml; charset=UTF-8")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


def main():
    global OUT
    port, cert, key, client_ca, OUT = sys.argv[1:6]
    os.makedirs(OUT, exist_ok=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(client_ca)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
