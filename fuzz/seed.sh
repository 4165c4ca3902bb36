#!/usr/bin/env bash
# Writes the seed inputs of every fuzz target into fuzz/corpus/<target>/ (kept in git with what
# fuzzing added to them): real S/MIME, CMS and certificates made with the openssl CLI, SMTP
# dialogues, DNS packets, LDAP messages, MDNs and API bodies. Run again only to start afresh.
#
#   bash fuzz/seed.sh
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
corpus=corpus
seed() { mkdir -p "$corpus/$1"; cat > "$corpus/$1/$2"; }

# A CA, a sender and a recipient with the DirectTrust end-entity extensions (valid for 100 years:
# the differential target opens the seeds at any later date).
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/ca.key" -out "$work/ca.pem" -days 36500 \
  -subj "/CN=Fuzz Seed CA" -addext "basicConstraints=critical,CA:TRUE" 2>/dev/null
for who in alice bob; do
  openssl req -newkey rsa:2048 -nodes -keyout "$work/$who.key" -out "$work/$who.csr" -subj "/CN=$who@a.test" 2>/dev/null
  openssl x509 -req -in "$work/$who.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial -days 36500 \
    -out "$work/$who.pem" -extfile <(printf 'subjectAltName=email:%s@a.test\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=emailProtection\nbasicConstraints=critical,CA:FALSE\n' "$who") 2>/dev/null
done
printf 'Content-Type: message/rfc822\r\n\r\nFrom: alice@a.test\r\nTo: bob@a.test\r\nSubject: Referral\r\nMessage-ID: <seed@a.test>\r\n\r\nPlease see the patient.\r\n' > "$work/wrapped.eml"
openssl cms -sign -binary -in "$work/wrapped.eml" -signer "$work/alice.pem" -inkey "$work/alice.key" -md sha256 \
  -outform DER -out "$work/signed.der"
openssl cms -sign -binary -in "$work/wrapped.eml" -signer "$work/alice.pem" -inkey "$work/alice.key" -md sha256 \
  -keyopt rsa_padding_mode:pss -outform DER -out "$work/signed-pss.der"
openssl cms -sign -in "$work/wrapped.eml" -signer "$work/alice.pem" -inkey "$work/alice.key" -md sha256 \
  -out "$work/signed.eml"
openssl cms -encrypt -binary -in "$work/signed.eml" -aes256 -recip "$work/bob.pem" -outform DER -out "$work/sealed.der"
openssl cms -encrypt -binary -in "$work/signed.eml" -aes256 -recip "$work/bob.pem" -from alice@a.test -to bob@a.test \
  -subject Referral -out "$work/sealed.eml"
openssl cms -encrypt -binary -in "$work/signed.eml" -aes-256-gcm -recip "$work/bob.pem" -keyopt rsa_padding_mode:oaep \
  -outform DER -out "$work/sealed-gcm.der"
openssl x509 -in "$work/alice.pem" -outform DER -out "$work/alice.der"
openssl crl2pkcs7 -nocrl -certfile "$work/ca.pem" -outform DER -out "$work/bundle.p7b"
openssl crl2pkcs7 -nocrl -certfile "$work/ca.pem" -out "$work/bundle.pem"

# The differential target opens with these keys (kept in git; they protect nothing).
mkdir -p keys
cp "$work/ca.pem" keys/ca.pem
cp "$work/bob.pem" keys/bob.pem
cp "$work/bob.key" keys/bob.key
for f in sealed.der sealed-gcm.der; do seed open_differential "$f" < "$work/$f"; done
openssl cms -encrypt -binary -in "$work/signed.eml" -aes128 -recip "$work/bob.pem" -outform DER \
  -out "$work/sealed-128.der"
seed open_differential sealed-128.der < "$work/sealed-128.der"

for target in der cms; do
  for f in signed.der signed-pss.der sealed.der sealed-gcm.der bundle.p7b alice.der; do seed "$target" "$f" < "$work/$f"; done
done
for f in sealed.eml signed.eml wrapped.eml; do seed inspect "$f" < "$work/$f"; seed mime "$f" < "$work/$f"; done
seed bundle bundle.p7b < "$work/bundle.p7b"
seed bundle bundle.pem < "$work/bundle.pem"
seed certificate alice.der < "$work/alice.der"
seed certificate alice.pem < "$work/alice.pem"

seed report mdn.eml <<'EOF'
From: bob@a.test
To: alice@a.test
Content-Type: multipart/report; report-type=disposition-notification; boundary="r"

--r
Content-Type: text/plain

processed
--r
Content-Type: message/disposition-notification

Reporting-UA: mx.a.test; hisp
Original-Recipient: rfc822; bob@a.test
Final-Recipient: rfc822; bob@a.test
Original-Message-ID: <seed@a.test>
Disposition: automatic-action/MDN-sent-automatically;processed
X-DIRECT-FINAL-DESTINATION-DELIVERY:

--r--
EOF
seed report dsn.eml <<'EOF'
From: postmaster@a.test
Content-Type: multipart/report; report-type=delivery-status; boundary="d"
X-Original-Message-ID: <seed@a.test>

--d
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.a.test

Final-Recipient: rfc822; bob@b.test
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 no such user
--d--
EOF

printf '\000EHLO peer.test\r\nMAIL FROM:<alice@a.test> SIZE=100\r\nRCPT TO:<bob@b.test>\r\nDATA\r\nContent-Type: application/pkcs7-mime\r\n\r\nMIAGCSqGSIb3\r\n..dot\r\n.\r\nRSET\r\nQUIT\r\n' | seed smtp_session backbone
printf '\001EHLO ehr.test\r\nSTARTTLS\r\nEHLO ehr.test\r\nAUTH PLAIN AGFsaWNlQGEudGVzdABwYXNzd29yZA==\r\nAUTH LOGIN\r\nYWxpY2U=\r\ncGFzcw==\r\nMAIL FROM:<alice@a.test>\r\n' | seed smtp_session submission
printf '250-mx.b.test\r\n250-PIPELINING\r\n250-SIZE 10485760\r\n250 STARTTLS\r\n' | seed smtp_reply ehlo
printf '550 5.7.1 refused\r\n' | seed smtp_reply refused

python3 - "$corpus" <<'EOF'
import os, struct, sys
corpus = sys.argv[1]
def name(n):
    return b"".join(bytes([len(l)]) + l.encode() for l in n.split(".")) + b"\0"
def write(target, file, data):
    os.makedirs(f"{corpus}/{target}", exist_ok=True)
    open(f"{corpus}/{target}/{file}", "wb").write(data)
for qtype, label in [(37, "cert"), (15, "mx"), (1, "a"), (33, "srv")]:
    query = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + name("bob.b.test") + struct.pack(">HH", qtype, 1)
    write("dns_query", f"query-{label}", query)
# An answer: CERT PKIX, MX, A and SRV records, compressed names.
head = struct.pack(">HHHHHH", 0x1234, 0x8180, 1, 4, 0, 0) + name("b.test") + struct.pack(">HH", 37, 1)
cert = struct.pack(">HHB", 1, 0, 0) + b"\x30\x03\x02\x01\x01"
rr = lambda t, data: b"\xc0\x0c" + struct.pack(">HHIH", t, 1, 300, len(data)) + data
answer = head + rr(37, cert) + rr(15, struct.pack(">H", 10) + name("mx.b.test")) + rr(1, bytes([127, 0, 0, 1])) \
    + rr(33, struct.pack(">HHH", 0, 5, 389) + name("ldap.b.test"))
write("dns_answer", "answer", answer)
# LDAP: a bind response, then a search result done after a bind response (two messages).
write("ldap_messages", "bind", bytes.fromhex("300c02010161070a010004000400"))
write("ldap_messages", "two", bytes.fromhex("300c02010161070a010004000400300c02010265070a010004000400"))
EOF

# HTTP answers to a fetch: a certificate with a length, a certificate in chunks, a redirect, a 404.
{ printf 'HTTP/1.1 200 OK\r\nContent-Type: application/pkix-cert\r\nContent-Length: %s\r\n\r\n' \
  "$(wc -c < "$work/alice.der")"; cat "$work/alice.der"; } | seed http_answer with-length
{ printf 'HTTP/1.1 200 OK\r\nContent-Type: application/pkix-cert\r\n\r\n'; cat "$work/alice.der"; } | seed http_answer until-close
{ printf 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n' "$(wc -c < "$work/alice.der")"
  cat "$work/alice.der"; printf '\r\n0\r\n\r\n'; } | seed http_answer chunked
printf 'HTTP/1.1 301 Moved\r\nLocation: http://elsewhere.test/\r\nContent-Length: 0\r\n\r\n' | seed http_answer redirect
printf 'HTTP/1.0 404 Not Found\r\n\r\n' | seed http_answer not-found

seed api_json referral.json <<'EOF'
{"from": "dr.smith@a.test", "to": ["dr.jones@b.test"], "subject": "Referral", "body": "See attached.",
 "attachments": [{"filename": "summary.xml", "content_type": "application/xml", "content_base64": "PGEvPg=="}],
 "referral": {"patient_id": "MRN-1", "direction": "transferring", "ccda_sections": ["problems"], "in_reply_to": "<x@y>"}}
EOF
seed api_json representative.json <<'EOF'
{"first_name": "Jane", "last_name": "Smith", "date_of_birth": "1975-06-01", "personal_email": "jane@example.org",
 "home_address": {"street": "1 Main St", "city": "Springfield", "state": "IL", "postal_code": "62701"},
 "name": "Smith Pediatrics", "npi": "1234567893", "phone": "+15555550123"}
EOF
# What a portal visitor types or their browser sends.
printf '__Host-hisp=QuB4J1Myh6-ah_gSlBeXW5r2jfgK7rSwjV4sA4qck0Q; other=1' | seed portal cookie
printf 'dr.jones@b.test, nobody@nowhere.test; x@y.z\nq@r.s' | seed portal addresses
printf '123 456' | seed portal totp
printf '7kq4-m2xd-9r0t' | seed portal recovery
printf 'correct horse battery staple' | seed portal passphrase
printf '<img src=x onerror=alert(1)>.txt' | seed portal filename
printf 'r\xc3\xa9sum\xc3\xa9 "final";.pdf' | seed portal utf8-name
# A shared document's C-CDA: a small one with every narrative element, and the hostile ones.
cat <<'XML' | seed ccda_view narrative
<?xml version="1.0"?><ClinicalDocument xmlns="urn:hl7-org:v3"><title>Note</title><recordTarget><patientRole><patient><name><given>Eve</given><family>Roe</family></name><birthTime value="19750501"/><administrativeGenderCode code="F"/></patient></patientRole></recordTarget><author><assignedAuthor><assignedPerson><name>Dr A</name></assignedPerson></assignedAuthor></author><effectiveTime value="201308151030-0800"/><component><structuredBody><component><section><title>Plan</title><text><paragraph>a<content styleCode="Bold">b</content><br/><sub>c</sub></paragraph><list listType="ordered"><caption>L</caption><item>i</item></list><table><caption>T</caption><thead><tr><th colspan="2">h</th></tr></thead><tbody><tr><td rowspan="1">d</td></tr></tbody></table><footnote>f</footnote><linkHtml href="x">l</linkHtml><renderMultiMedia referencedObject="m"/></text><component><section><title>Inner</title></section></component></section></component></structuredBody></component></ClinicalDocument>
XML
printf '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><ClinicalDocument xmlns="urn:hl7-org:v3"><title>&x;</title></ClinicalDocument>' | seed ccda_view xxe
printf '<ClinicalDocument xmlns="urn:hl7-org:v3"><component><nonXMLBody><text mediaType="text/plain">plain</text></nonXMLBody></component></ClinicalDocument>' | seed ccda_view unstructured
seed ccda_view referral-note < ../fixtures/ccda/referral-note.xml
# XDM: a package written by Python's zipfile (a byte 0 first: read as a package), its METADATA.XML
# alone (a byte 1 first), and a package whose entry name leaves it.
python3 - "$corpus/xdm" <<'PY'
import hashlib, os, sys, zipfile, io
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
doc = b'<ClinicalDocument xmlns="urn:hl7-org:v3"><title>Note</title></ClinicalDocument>'
meta = f"""<lcm:SubmitObjectsRequest xmlns:lcm="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0" xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"><rim:RegistryObjectList>
<rim:ExtrinsicObject id="urn:uuid:d1" mimeType="text/xml" objectType="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1">
<rim:Slot name="hash"><rim:ValueList><rim:Value>{hashlib.sha1(doc).hexdigest()}</rim:Value></rim:ValueList></rim:Slot>
<rim:Slot name="size"><rim:ValueList><rim:Value>{len(doc)}</rim:Value></rim:ValueList></rim:Slot>
<rim:Slot name="URI"><rim:ValueList><rim:Value>DOC0001.XML</rim:Value></rim:ValueList></rim:Slot>
<rim:ExternalIdentifier id="e1" registryObject="urn:uuid:d1" identificationScheme="urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab" value="2.25.1"/>
</rim:ExtrinsicObject>
<rim:RegistryPackage id="urn:uuid:s1"><rim:Slot name="submissionTime"><rim:ValueList><rim:Value>20261206120000</rim:Value></rim:ValueList></rim:Slot>
<rim:ExternalIdentifier id="e2" registryObject="urn:uuid:s1" identificationScheme="urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8" value="2.25.2"/>
<rim:ExternalIdentifier id="e3" registryObject="urn:uuid:s1" identificationScheme="urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832" value="2.25.3"/>
</rim:RegistryPackage>
<rim:Classification id="c1" classifiedObject="urn:uuid:s1" classificationNode="urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"/>
</rim:RegistryObjectList></lcm:SubmitObjectsRequest>""".encode()
def package(entries):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            z.writestr(name, data)
    return buf.getvalue()
good = package([("INDEX.HTM", b"<html></html>"), ("README.TXT", b"seed"), ("IHE_XDM/SUBSET01/METADATA.XML", meta),
                ("IHE_XDM/SUBSET01/DOC0001.XML", doc)])
open(os.path.join(out, "package"), "wb").write(b"\0" + good)
open(os.path.join(out, "metadata"), "wb").write(b"\1" + meta)
escape = package([("IHE_XDM/SUBSET01/METADATA.XML", meta), ("IHE_XDM/../../evil", doc)])
open(os.path.join(out, "escape"), "wb").write(b"\0" + escape)
PY
# XDR: an ITI-41 request in MTOM (a byte 0 first: boundary "b", root part "root") and in plain
# SOAP with the document inline (a byte 1 first).
python3 - "$corpus/xdr" <<'PY'
import base64, os, sys
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
doc = b'<ClinicalDocument xmlns="urn:hl7-org:v3"><title>Note</title></ClinicalDocument>'
def envelope(document):
    return f"""<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://www.w3.org/2005/08/addressing"><soap:Header><wsa:Action>urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b</wsa:Action><wsa:MessageID>urn:uuid:1</wsa:MessageID><direct:addressBlock xmlns:direct="urn:direct:addressing"><direct:from>mailto:a@a.test</direct:from><direct:to>mailto:b@b.test</direct:to></direct:addressBlock></soap:Header><soap:Body><xdsb:ProvideAndRegisterDocumentSetRequest xmlns:xdsb="urn:ihe:iti:xds-b:2007"><lcm:SubmitObjectsRequest xmlns:lcm="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0" xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"><rim:RegistryObjectList><rim:ExtrinsicObject id="D1" mimeType="text/xml"><rim:ExternalIdentifier id="e1" registryObject="D1" identificationScheme="urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab" value="2.25.1"/></rim:ExtrinsicObject><rim:RegistryPackage id="S1"><rim:Slot name="submissionTime"><rim:ValueList><rim:Value>20261206</rim:Value></rim:ValueList></rim:Slot><rim:ExternalIdentifier id="e2" registryObject="S1" identificationScheme="urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8" value="2.25.2"/><rim:ExternalIdentifier id="e3" registryObject="S1" identificationScheme="urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832" value="2.25.3"/></rim:RegistryPackage><rim:Classification id="c1" classifiedObject="S1" classificationNode="urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"/></rim:RegistryObjectList></lcm:SubmitObjectsRequest><xdsb:Document id="D1">{document}</xdsb:Document></xdsb:ProvideAndRegisterDocumentSetRequest></soap:Body></soap:Envelope>""".encode()
mtom = (b"--b\r\nContent-Type: application/xop+xml; type=\"application/soap+xml\"\r\nContent-ID: <root>\r\n\r\n"
        + envelope('<xop:Include xmlns:xop="http://www.w3.org/2004/08/xop/include" href="cid:d1"/>')
        + b"\r\n--b\r\nContent-ID: <d1>\r\n\r\n" + doc + b"\r\n--b--\r\n")
open(os.path.join(out, "mtom"), "wb").write(b"\0" + mtom)
open(os.path.join(out, "inline"), "wb").write(b"\1" + envelope(base64.b64encode(doc).decode()))
# An XDR endpoint's answer to a forward of ours (a byte 2 first: in MTOM, boundary "b"; 3: plain).
answer = (b'<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body><rs:RegistryResponse '
          b'xmlns:rs="urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0" status="urn:oasis:names:tc:ebxml-regrep:'
          b'ResponseStatusType:Failure"><rs:RegistryErrorList><rs:RegistryError errorCode="XDSMissingDocument" '
          b'codeContext="x"/></rs:RegistryErrorList></rs:RegistryResponse></soap:Body></soap:Envelope>')
open(os.path.join(out, "answer"), "wb").write(b"\3" + answer)
mtom_answer = b"--b\r\nContent-Type: application/xop+xml\r\n\r\n" + answer + b"\r\n--b--\r\n"
open(os.path.join(out, "answer-mtom"), "wb").write(b"\2" + mtom_answer)
PY
echo "seeds written to fuzz/$corpus"
