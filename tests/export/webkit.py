"""The exported configurations run by the real servers on loopback: nginx,
Apache httpd and the integrated server, each in its own process group,
stopped by the test, with a plain HTTP client to compare their answers."""

from __future__ import annotations

import base64
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from serverkit import SRC
from tools import require_tool

NGINX = "/usr/sbin/nginx"
APACHE = "/usr/sbin/apache2"


def need(server: str) -> str:
    """The server's program, or a skip that CI turns into a failure (tools.require_tool)."""
    package = {"nginx": "nginx", "apache": "apache2"}[server]
    return require_tool(server, f"apt-get install {package}", path={"nginx": NGINX, "apache": APACHE}[server])


def updmirror(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "updmirror", *args], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=SRC), timeout=timeout)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def check_config(server: str, conf: Path, prefix: Path) -> subprocess.CompletedProcess:
    """The server's own test of a configuration file (nginx -t, apache2 -t)."""
    program = need(server)
    cmd = [program, "-t", "-p", str(prefix), "-c", str(conf)] if server == "nginx" else \
        [program, "-t", "-f", str(conf)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


class Running:
    """A server process until `stop()`: nginx, Apache or `updmirror serve`."""

    def __init__(self, cmd: list[str], port: int, log: Path, env: dict | None = None):
        self.port = port
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True, env=env)
        until = time.monotonic() + 30
        while time.monotonic() < until:
            if self.proc.poll() is not None:
                raise AssertionError(f"{cmd[0]} exited {self.proc.returncode}: {self._tail()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise AssertionError(f"{cmd[0]} did not listen on {port}: {self._tail()}")

    def _tail(self) -> str:
        parts = [self.log.read_text(errors="replace")[-2000:]]
        error_log = self.log.parent / "error.log"
        if error_log.exists():
            parts.append(error_log.read_text(errors="replace")[-2000:])
        return "\n".join(parts)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def __enter__(self) -> Running:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start(server: str, config: Path, *, extra: tuple[str, ...] = (), prefix: Path | None = None,
          port: int) -> Running:
    """`server` ("nginx", "apache" or "ours") from `updmirror export SERVER -c config ...`."""
    prefix = prefix or config.parent / f"{server}-prefix"
    prefix.mkdir(parents=True, exist_ok=True)
    log = prefix / "console.log"
    if server == "ours":
        return Running([sys.executable, "-m", "updmirror", "serve", "-c", str(config)], port, log,
                       env=dict(os.environ, PYTHONPATH=SRC))
    text = updmirror("export", server, "-c", str(config), "--prefix", str(prefix), *extra).stdout
    conf = prefix / f"{server}.conf"
    conf.write_text(text)
    checked = check_config(server, conf, prefix)
    assert checked.returncode == 0, checked.stderr
    if server == "nginx":
        return Running([need("nginx"), "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"], port, log)
    return Running([need("apache"), "-f", str(conf), "-DFOREGROUND"], port, log)


@dataclass
class Answer:
    status: int
    body: bytes
    headers: dict[str, str]


def get(port: int, path: str, headers: dict[str, str] | None = None, *, tls: bool = False,
        method: str = "GET") -> Answer:
    if tls:
        import ssl
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        conn: http.client.HTTPConnection = http.client.HTTPSConnection("127.0.0.1", port, timeout=20,
                                                                       context=ctx)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request(method, path, headers=headers or {})
        r = conn.getresponse()
        return Answer(r.status, r.read(), {k.lower(): v for k, v in r.getheaders()})
    finally:
        conn.close()


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}




def self_signed(folder: Path) -> tuple[Path, Path]:
    """A throw-away certificate for localhost and its key, as PEM files."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o644)   # the workers (www-data) read it in these tests
    return cert_path, key_path
