"""Tokens at rest: AES-256-GCM with a random nonce per write, bound to the installation."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = b"v1"


class TokenCipher:
    """Encrypts token dicts; the installation id is authenticated data, so rows can't be swapped."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("TOKEN_ENCRYPTION_KEY must decode to 32 bytes (urlsafe base64)")
        self._aead = AESGCM(key)

    @classmethod
    def from_key_text(cls, text: str) -> TokenCipher:
        return cls(base64.urlsafe_b64decode(text.encode() + b"=" * (-len(text) % 4)))

    @staticmethod
    def generate_key_text() -> str:
        return base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")

    def encrypt(self, tokens: dict[str, Any], *, installation_id: str) -> bytes:
        nonce = os.urandom(12)
        plain = json.dumps(tokens, sort_keys=True).encode()
        return _VERSION + nonce + self._aead.encrypt(nonce, plain, installation_id.encode())

    def decrypt(self, blob: bytes, *, installation_id: str) -> dict[str, Any]:
        if not blob.startswith(_VERSION):
            raise ValueError("unknown token encryption version")
        nonce, sealed = blob[2:14], blob[14:]
        return json.loads(self._aead.decrypt(nonce, sealed, installation_id.encode()))  # type: ignore[no-any-return]
