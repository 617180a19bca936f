"""A real registry (Debian's docker-registry, Distribution 2.8) on loopback for the pyctr
tests: TLS with a CA made here, htpasswd auth (bcrypt, apache2-utils' htpasswd), storage in a
temp dir. Started and stopped by pid; nothing outside its temp dir is touched.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

USER, PASSWORD = "tester", "s3cret-pass"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    def __init__(self, base: str, tls_auth: bool = True) -> None:
        self.base = base
        self.tls_auth = tls_auth
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.ca = os.path.join(base, "ca.crt")
        self.proc: subprocess.Popen | None = None

    def _certs(self) -> None:
        b = self.base

        def ossl(*a: str) -> None:
            subprocess.run(["openssl", *a], check=True, capture_output=True)

        ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
             "/CN=pyctr-test-ca", "-keyout", f"{b}/ca.key", "-out", self.ca)
        ossl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout",
             f"{b}/srv.key", "-out", f"{b}/srv.csr")
        with open(f"{b}/san.ext", "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        ossl("x509", "-req", "-in", f"{b}/srv.csr", "-CA", self.ca, "-CAkey", f"{b}/ca.key",
             "-CAcreateserial", "-days", "2", "-extfile", f"{b}/san.ext", "-out",
             f"{b}/srv.crt")
        with open(f"{b}/htpasswd", "w") as f:
            f.write(subprocess.run(["htpasswd", "-Bbn", USER, PASSWORD], check=True,
                                   capture_output=True, text=True).stdout)

    def start(self) -> Registry:
        os.makedirs(self.base, exist_ok=True)
        cfg = [
            "version: 0.1", "log:", "  level: error", "  accesslog:", "    disabled: true",
            "storage:", "  filesystem:", f"    rootdirectory: {self.base}/data",
            "  delete:", "    enabled: true", "http:", f"  addr: {self.host}",
        ]
        if self.tls_auth:
            self._certs()
            cfg += ["  tls:", f"    certificate: {self.base}/srv.crt",
                    f"    key: {self.base}/srv.key", "auth:", "  htpasswd:",
                    "    realm: pyctr-test", f"    path: {self.base}/htpasswd"]
        with open(f"{self.base}/config.yml", "w") as f:
            f.write("\n".join(cfg) + "\n")
        log = open(f"{self.base}/registry.log", "wb")  # noqa: SIM115 - for its whole life
        self.proc = subprocess.Popen(["docker-registry", "serve", f"{self.base}/config.yml"],
                                     stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    with open(f"{self.base}/registry.log", errors="replace") as f:
                        raise RuntimeError(f"registry did not start: {f.read()[-500:]}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)
