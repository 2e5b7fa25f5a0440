"""Request signatures we verify: HubSpot's v3 (webhooks and app-card fetches), rebuilt from the public URL.

HubSpot signs method + full URI + raw body + timestamp with the app's client secret. The URI
is the one HubSpot called (our public origin, not what a TLS-terminating proxy hands Flask),
with a fixed set of percent-escapes decoded; everything else stays as sent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

MAX_AGE_MS = 5 * 60 * 1000

_DECODED = {
    "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
    "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
}
_ESCAPE = re.compile("|".join(_DECODED), re.IGNORECASE)


class SignatureError(ValueError):
    """The request is not provably from HubSpot; the message says which check failed."""


def decode_uri(uri: str) -> str:
    """HubSpot's decoding rule: only these escapes are decoded before signing."""
    return _ESCAPE.sub(lambda m: _DECODED[m.group(0).upper()], uri)


def v3_signature(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """base64(HMAC-SHA256(secret, method + decoded uri + body + timestamp))."""
    source = method.upper().encode() + decode_uri(uri).encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), source, hashlib.sha256).digest()).decode()


def verify_v3(
    secret: str, *, method: str, uri: str, body: bytes, headers: Mapping[str, str], now_ms: int
) -> None:
    """Raise SignatureError unless the v3 headers prove HubSpot sent exactly this request recently."""
    signature = headers.get("X-HubSpot-Signature-v3") or ""
    timestamp = headers.get("X-HubSpot-Request-Timestamp") or ""
    if not secret:
        raise SignatureError("the HubSpot client secret is not configured")
    if not signature or not timestamp:
        raise SignatureError("missing X-HubSpot-Signature-v3 or X-HubSpot-Request-Timestamp")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 15):  # "²".isdigit() is True
        raise SignatureError("X-HubSpot-Request-Timestamp is not a millisecond epoch")
    if abs(now_ms - int(timestamp)) > MAX_AGE_MS:
        raise SignatureError("request timestamp is more than 5 minutes from now (stale or replayed)")
    expected = v3_signature(secret, method, uri, body, timestamp)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise SignatureError("X-HubSpot-Signature-v3 does not match")


def public_uri(public_base_url: str, environ: Mapping[str, Any]) -> str:
    """The URL HubSpot called: our configured public origin plus the raw path and query we received."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not raw:
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        raw = quote(path.encode("latin-1"), safe="/:@!$&'()*+,;=-._~%")
        if environ.get("QUERY_STRING"):
            raw += "?" + environ["QUERY_STRING"]
    return public_base_url.rstrip("/") + raw
