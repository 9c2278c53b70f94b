"""TLS helpers for tests: keys and certificates made by openssl (not by richchat's code),
client contexts, and fingerprints computed the way the docs tell users to (openssl)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (scripts/install-test-deps.sh installs it)")
    return path


@dataclass(frozen=True)
class KeyPair:
    cert: Path
    key: Path

    @property
    def fingerprint(self) -> str:
        return openssl_fingerprint(self.cert)


def openssl_keypair(directory: Path, name: str = "other", *, kind: str = "ec",
                    cn: str = "impostor") -> KeyPair:
    """A self-signed certificate and its key, made by the openssl binary."""
    need("openssl")
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{name}-cert.pem", directory / f"{name}-key.pem"
    algo = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] if kind == "ec" else (
        ["-newkey", "rsa:2048"] if kind == "rsa" else ["-newkey", kind])
    subprocess.run(
        ["openssl", "req", "-x509", *algo, "-nodes", "-keyout", str(key), "-out", str(cert),
         "-subj", f"/CN={cn}", "-days", "2"],
        check=True, capture_output=True,
    )
    return KeyPair(cert, key)


def openssl_fingerprint(cert: Path) -> str:
    """The documented recipe: SHA-256 of the DER public key, base64 without padding."""
    need("openssl")
    pub = subprocess.run(["openssl", "x509", "-in", str(cert), "-pubkey", "-noout"],
                         check=True, capture_output=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub,
                         check=True, capture_output=True).stdout
    digest = subprocess.run(["openssl", "dgst", "-sha256", "-binary"], input=der, check=True,
                            capture_output=True).stdout
    b64 = subprocess.run(["openssl", "base64", "-A"], input=digest, check=True,
                         capture_output=True).stdout.decode().strip()
    return "SHA256:" + b64.rstrip("=")


def client_context() -> ssl.SSLContext:
    """A TLS client that checks nothing (what ncat --ssl and openssl s_client do)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx
