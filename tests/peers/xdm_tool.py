#!/usr/bin/env python3
"""An XDM writer and reader independent of hisp: Python's zipfile and ElementTree, the metadata
written here from IHE ITI TF-3 (ebRIM 3.0 SubmitObjectsRequest, the XDS UUIDs).

  xdm_tool.py write OUT KIND DOCUMENT   KIND: good, bomb, escape, hash, metadata, dtd, missing
  xdm_tool.py check ZIP                 checks a package's layout and metadata (XDM's required
                                        attributes, and a C-CDA's class, type and language);
                                        prints what is wrong

`check` exits 0 when the package passes, 1 with one line per problem otherwise.
"""
import hashlib
import io
import sys
import xml.etree.ElementTree as ET
import zipfile

RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
LCM = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
STABLE = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
SUBMISSION_SET = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"
DOC = {
    "classCode": "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a",
    "typeCode": "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983",
    "formatCode": "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d",
    "confidentialityCode": "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f",
    "author": "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d",
    "patientId": "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427",
    "uniqueId": "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab",
}
SET = {
    "uniqueId": "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8",
    "sourceId": "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832",
    "patientId": "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446",
}


def slot(name, *values):
    vals = "".join(f"<rim:Value>{v}</rim:Value>" for v in values)
    return f'<rim:Slot name="{name}"><rim:ValueList>{vals}</rim:ValueList></rim:Slot>'


def metadata(document, declared_hash=None, declared_size=None):
    digest = declared_hash or hashlib.sha1(document).hexdigest()
    size = declared_size if declared_size is not None else len(document)
    patient = "PY-7^^^&amp;2.16.840.1.113883.19.5&amp;ISO"
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<lcm:SubmitObjectsRequest xmlns:lcm="{LCM}" xmlns:rim="{RIM}">
 <rim:RegistryObjectList>
  <rim:ExtrinsicObject id="Document01" mimeType="text/xml" objectType="{STABLE}">
   {slot("creationTime", "20261201083000")}
   {slot("hash", digest)}
   {slot("languageCode", "en-US")}
   {slot("size", size)}
   {slot("sourcePatientId", patient)}
   {slot("URI", "DOC0001.XML")}
   <rim:Name><rim:LocalizedString value="Summary written by Python"/></rim:Name>
   <rim:Classification id="cl01" classificationScheme="{DOC["author"]}" classifiedObject="Document01" nodeRepresentation="">
    {slot("authorPerson", "^Writer^Python")}
    {slot("authorInstitution", "Python Clinic")}
   </rim:Classification>
   <rim:Classification id="cl02" classificationScheme="{DOC["typeCode"]}" classifiedObject="Document01" nodeRepresentation="34133-9">
    {slot("codingScheme", "2.16.840.1.113883.6.1")}
    <rim:Name><rim:LocalizedString value="Summary of episode note"/></rim:Name>
   </rim:Classification>
   <rim:ExternalIdentifier id="ei01" registryObject="Document01" identificationScheme="{DOC["patientId"]}" value="{patient}">
    <rim:Name><rim:LocalizedString value="XDSDocumentEntry.patientId"/></rim:Name>
   </rim:ExternalIdentifier>
   <rim:ExternalIdentifier id="ei02" registryObject="Document01" identificationScheme="{DOC["uniqueId"]}" value="2.25.4242">
    <rim:Name><rim:LocalizedString value="XDSDocumentEntry.uniqueId"/></rim:Name>
   </rim:ExternalIdentifier>
  </rim:ExtrinsicObject>
  <rim:RegistryPackage id="SubmissionSet01">
   {slot("submissionTime", "20261201083500")}
   {slot("intendedRecipient", "||^^Internet^dr.jones@b.test")}
   <rim:ExternalIdentifier id="ei03" registryObject="SubmissionSet01" identificationScheme="{SET["uniqueId"]}" value="2.25.4243"/>
   <rim:ExternalIdentifier id="ei04" registryObject="SubmissionSet01" identificationScheme="{SET["sourceId"]}" value="2.25.4244"/>
  </rim:RegistryPackage>
  <rim:Classification id="cl03" classifiedObject="SubmissionSet01" classificationNode="{SUBMISSION_SET}"/>
  <rim:Association id="as01" associationType="urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
    sourceObject="SubmissionSet01" targetObject="Document01">{slot("SubmissionSetStatus", "Original")}</rim:Association>
 </rim:RegistryObjectList>
</lcm:SubmitObjectsRequest>
""".encode()


def package(entries):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            z.writestr(name, data)
    return buf.getvalue()


def write(out, kind, document):
    meta = metadata(document)
    top = [("INDEX.HTM", b"<html><body><a href='IHE_XDM/SUBSET01/DOC0001.XML'>doc</a></body></html>"),
           ("README.TXT", b"Written by the test's own XDM writer.")]
    entries = {
        "good": top + [("IHE_XDM/SUBSET01/METADATA.XML", meta), ("IHE_XDM/SUBSET01/DOC0001.XML", document)],
        # 20 MiB of zeros: deflate makes it about 20 KiB (a ratio near 1000).
        "bomb": top + [("IHE_XDM/SUBSET01/METADATA.XML", metadata(b"\0" * (20 << 20))),
                       ("IHE_XDM/SUBSET01/DOC0001.XML", b"\0" * (20 << 20))],
        "escape": top + [("IHE_XDM/SUBSET01/METADATA.XML", meta), ("IHE_XDM/SUBSET01/DOC0001.XML", document),
                         ("../../etc/cron.d/evil", b"* * * * * root true\n")],
        "hash": top + [("IHE_XDM/SUBSET01/METADATA.XML", metadata(document, declared_hash="0" * 40)),
                       ("IHE_XDM/SUBSET01/DOC0001.XML", document)],
        # Well-formed, but no RegistryPackage is classified as the submission set.
        "metadata": top + [("IHE_XDM/SUBSET01/METADATA.XML",
                            meta.replace(SUBMISSION_SET.encode(), b"urn:uuid:00000000-0000-4000-8000-000000000000")),
                           ("IHE_XDM/SUBSET01/DOC0001.XML", document)],
        "dtd": top + [("IHE_XDM/SUBSET01/METADATA.XML",
                       b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>' + meta.split(b"?>", 1)[1]),
                      ("IHE_XDM/SUBSET01/DOC0001.XML", document)],
        "missing": top + [("IHE_XDM/SUBSET01/METADATA.XML", meta)],
    }[kind]
    with open(out, "wb") as f:
        f.write(package(entries))


def check(path):
    problems = []
    z = zipfile.ZipFile(path)
    names = z.namelist()
    for required in ["INDEX.HTM", "README.TXT"]:
        if required not in names:
            problems.append(f"no {required}")
    for name in names:
        if name.startswith("/") or ".." in name.split("/") or "\\" in name:
            problems.append(f"unsafe entry name {name}")
    metas = [n for n in names if n.upper().startswith("IHE_XDM/") and n.upper().endswith("/METADATA.XML")]
    if not metas:
        problems.append("no IHE_XDM/<subset>/METADATA.XML")
    for meta in metas:
        folder = meta[: -len("METADATA.XML")]
        root = ET.fromstring(z.read(meta))
        if root.tag != f"{{{LCM}}}SubmitObjectsRequest":
            problems.append(f"{meta}: root is {root.tag}")
        objects = root.find(f"{{{RIM}}}RegistryObjectList")
        classifications = root.iter(f"{{{RIM}}}Classification")
        by_object = {}
        for c in classifications:
            by_object.setdefault(c.get("classifiedObject"), []).append(c)

        def slots(node):
            return {s.get("name"): [v.text for v in s.iter(f"{{{RIM}}}Value")] for s in node.findall(f"{{{RIM}}}Slot")}

        def identifiers(node):
            return {e.get("identificationScheme"): e.get("value") for e in node.findall(f"{{{RIM}}}ExternalIdentifier")}

        docs = objects.findall(f"{{{RIM}}}ExtrinsicObject")
        if not docs:
            problems.append(f"{meta}: no ExtrinsicObject")
        for doc in docs:
            did = doc.get("id")
            if doc.get("objectType") != STABLE:
                problems.append(f"{did}: objectType {doc.get('objectType')}")
            if not doc.get("mimeType"):
                problems.append(f"{did}: no mimeType")
            s = slots(doc)
            # XDM's required attributes for every document; a C-CDA's header also gives its
            # class, type and language (required when known, R2).
            cda = doc.get("mimeType") == "text/xml"
            for required in ["hash", "size", "URI", "creationTime", "sourcePatientId"] + (["languageCode"] if cda else []):
                if not s.get(required):
                    problems.append(f"{did}: no {required} slot")
            ids = identifiers(doc)
            for name in ["uniqueId", "patientId"]:
                if not ids.get(DOC[name]):
                    problems.append(f"{did}: no {name}")
            schemes = {c.get("classificationScheme"): c for c in by_object.get(did, [])}
            for name in ["formatCode", "confidentialityCode"] + (["classCode", "typeCode"] if cda else []):
                c = schemes.get(DOC[name])
                if c is None:
                    problems.append(f"{did}: no {name}")
                    continue
                if not c.get("nodeRepresentation") or not slots(c).get("codingScheme"):
                    problems.append(f"{did}: {name} without a code or its codingScheme")
                if c.find(f"{{{RIM}}}Name/{{{RIM}}}LocalizedString") is None:
                    problems.append(f"{did}: {name} without a display name")
            if DOC["author"] not in schemes:
                problems.append(f"{did}: no author")
            uri = (s.get("URI") or [""])[0]
            if folder + uri not in names:
                problems.append(f"{did}: URI {uri} not in the package")
                continue
            content = z.read(folder + uri)
            if (s.get("hash") or [""])[0] != hashlib.sha1(content).hexdigest():
                problems.append(f"{did}: hash does not match")
            if (s.get("size") or ["-1"])[0] != str(len(content)):
                problems.append(f"{did}: size does not match")
        packages = objects.findall(f"{{{RIM}}}RegistryPackage")
        sets = [p for p in packages
                if any(c.get("classificationNode") == SUBMISSION_SET for c in by_object.get(p.get("id"), []))]
        if len(sets) != 1:
            problems.append(f"{meta}: {len(sets)} submission sets")
            continue
        ss = sets[0]
        sid = ss.get("id")
        if not slots(ss).get("submissionTime"):
            problems.append("submission set: no submissionTime")
        ids = identifiers(ss)
        for name in ["uniqueId", "sourceId", "patientId"]:
            if not ids.get(SET[name]):
                problems.append(f"submission set: no {name}")
        members = {a.get("targetObject") for a in objects.findall(f"{{{RIM}}}Association")
                   if a.get("sourceObject") == sid and a.get("associationType", "").endswith(":HasMember")}
        for doc in docs:
            if doc.get("id") not in members:
                problems.append(f"{doc.get('id')}: no HasMember association from the submission set")
    for p in problems:
        print(p)
    return 0 if not problems else 1


def main():
    if sys.argv[1] == "write":
        write(sys.argv[2], sys.argv[3], open(sys.argv[4], "rb").read())
        return 0
    return check(sys.argv[2])


if __name__ == "__main__":
    sys.exit(main())
