"""Optional HTTPS: the same answers over TLS, large files without sendfile."""

import datetime
import http.client
import ssl

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from serverkit import EP11_INDEX, InProcessServer, publish, write_config

LARGE = bytes(range(256)) * 4096          # 1 MiB


def self_signed(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_files_are_served_over_tls(tmp_path, free_port):
    root = tmp_path / "store"
    publish(root, {"/m/large.nup": LARGE}, {EP11_INDEX: b"[A]\r\n"})
    cert, key = self_signed(tmp_path)
    cfg = write_config(tmp_path, root, free_port, tls_cert=cert, tls_key=key)
    with InProcessServer(cfg):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection("127.0.0.1", free_port, context=ctx, timeout=10)
        try:
            for path, body in [("/m/large.nup", LARGE), ("/" + EP11_INDEX, b"[A]\r\n"),
                               ("/m/large.nup", LARGE)]:
                conn.request("GET", path)
                r = conn.getresponse()
                assert (r.status, r.read()) == (200, body)
            conn.request("GET", "/m/large.nup", headers={"Range": "bytes=1000-1999"})
            r = conn.getresponse()
            assert (r.status, r.read()) == (206, LARGE[1000:2000])
        finally:
            conn.close()
