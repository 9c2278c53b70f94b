"""Trust on first use for TLS chat servers, the way SSH does it.

* :mod:`.fingerprint`: a key's fingerprint, ``SHA256:`` + unpadded base64 of the SHA-256 of
  the DER ``SubjectPublicKeyInfo`` (pure; no ``cryptography`` import, so ``richchat send``
  stays fast);
* :mod:`.known`: the known-servers file (``HOST:PORT FINGERPRINT FIRST-SEEN`` lines);
* :mod:`.connect`: open a chat connection: TLS first, the presented key checked against the
  pin before a single chat byte is sent, plaintext only for a server never seen with TLS.

docs/security.md explains the design and its limits.
"""
