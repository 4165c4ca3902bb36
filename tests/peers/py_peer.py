#!/usr/bin/env python3
"""An independent S/MIME peer for interop tests, built on Python's `cryptography` and endesive.

  seal: wrap as message/rfc822, sign (cryptography, SHA-256, detached), encrypt (endesive;
        RSA PKCS#1 v1.5 or RSA-OAEP key transport, AES-256-CBC).
  open: decrypt (cryptography), then check the CMS signature itself: the messageDigest attribute
        against the signed content, the RSA signature over the signed attributes, and the signer
        certificate against the anchor. Prints the signed content.
"""
import argparse
import hashlib
import importlib.util
import os
import sys

from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import pkcs7


def endesive_encrypt():
    # endesive.email's package __init__ also imports its verifier, whose oscrypto dependency cannot
    # read OpenSSL 3.0.1x version strings; the encryptor needs none of that, so load it alone.
    import endesive
    path = os.path.join(os.path.dirname(endesive.__file__), "email", "encrypt.py")
    spec = importlib.util.spec_from_file_location("endesive_email_encrypt", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.encrypt


def load_cert(path):
    data = open(path, "rb").read()
    return x509.load_pem_x509_certificate(data) if b"-----BEGIN" in data else x509.load_der_x509_certificate(data)


def load_key(path):
    return serialization.load_pem_private_key(open(path, "rb").read(), password=None)


def crlf(data):
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def header_block(message):
    head = message.split(b"\r\n\r\n", 1)[0]
    keep = []
    for line in head.split(b"\r\n"):
        name = line.split(b":", 1)[0].strip().lower()
        if name in (b"from", b"to", b"cc", b"subject", b"date", b"message-id"):
            keep.append(line)
    return b"\r\n".join(keep) + b"\r\n"


def seal(args):
    original = crlf(open(args.input, "rb").read())
    wrapped = b"Content-Type: message/rfc822\r\n\r\n" + original
    signed = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(wrapped)
        .add_signer(load_cert(args.signer_cert), load_key(args.signer_key), hashes.SHA256())
        .sign(serialization.Encoding.SMIME, [pkcs7.PKCS7Options.DetachedSignature])
    )
    enveloped = endesive_encrypt()(crlf(signed), [load_cert(p) for p in args.recipient_cert], "aes256_cbc", args.oaep)
    enveloped = crlf(enveloped.encode() if isinstance(enveloped, str) else enveloped)
    sys.stdout.buffer.write(header_block(original) + enveloped)


def split_multipart(entity):
    head, body = entity.split(b"\r\n\r\n", 1)
    unfolded = head.replace(b"\r\n\t", b" ").replace(b"\r\n ", b" ")
    boundary = unfolded.split(b'boundary="', 1)[1].split(b'"', 1)[0]
    delimiter = b"\r\n--" + boundary
    body = b"\r\n" + body
    pieces = body.split(delimiter)
    parts = [p[2:] if p.startswith(b"\r\n") else p for p in pieces[1:-1]]
    return parts


def open_(args):
    message = crlf(open(args.input, "rb").read())
    cert, key, anchor = load_cert(args.recipient_cert), load_key(args.recipient_key), load_cert(args.anchor)
    decrypted = pkcs7.pkcs7_decrypt_smime(message, cert, key, [])
    content, signature_part = split_multipart(crlf(decrypted))
    b64 = signature_part.split(b"\r\n\r\n", 1)[1]
    import base64
    signed_data = cms.ContentInfo.load(base64.b64decode(b"".join(b64.split())))["content"]
    signer_info = signed_data["signer_infos"][0]
    assert signer_info["digest_algorithm"]["algorithm"].native == "sha256", "digest is not SHA-256"
    attrs = signer_info["signed_attrs"]
    digest = [a["values"][0].native for a in attrs if a["type"].native == "message_digest"][0]
    if digest != hashlib.sha256(content).digest():
        sys.exit("messageDigest does not match the signed content")
    signer_der = signed_data["certificates"][0].chosen.dump()
    signer = x509.load_der_x509_certificate(signer_der)
    # The signature covers the DER of the signed attributes as a SET (RFC 5652 §5.4).
    signer.public_key().verify(signer_info["signature"].native, attrs.untag().dump(force=True),
                               padding.PKCS1v15(), hashes.SHA256())
    signer.verify_directly_issued_by(anchor)
    sys.stdout.buffer.write(content)


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("seal")
    s.add_argument("--in", dest="input", required=True)
    s.add_argument("--signer-cert", required=True)
    s.add_argument("--signer-key", required=True)
    s.add_argument("--recipient-cert", action="append", required=True)
    s.add_argument("--oaep", action="store_true")
    o = sub.add_parser("open")
    o.add_argument("--in", dest="input", required=True)
    o.add_argument("--recipient-cert", required=True)
    o.add_argument("--recipient-key", required=True)
    o.add_argument("--anchor", required=True)
    args = parser.parse_args()
    seal(args) if args.command == "seal" else open_(args)


if __name__ == "__main__":
    main()
