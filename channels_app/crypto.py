"""Channel secrets at rest: Fernet (AES + HMAC) with a key from settings, never stored in clear."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


def _fernet() -> Fernet:
    key = getattr(settings, "CHANNEL_SECRETS_KEY", "")
    if not key:
        # Derived from SECRET_KEY so a bare install works; production sets its own key.
        key = base64.urlsafe_b64encode(hashlib.sha256(f"channels:{settings.SECRET_KEY}".encode()).digest()).decode()
    return Fernet(key.encode() if isinstance(key, str) else key)


def secrets_encrypt(values: dict[str, Any]) -> str:
    if not values:
        return ""
    return _fernet().encrypt(json.dumps(values, sort_keys=True).encode()).decode()


def secrets_decrypt(token: str) -> dict[str, Any]:
    """The secrets dict; {} when empty or undecryptable (e.g. after a key change)."""
    if not token:
        return {}
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except (InvalidToken, ValueError):
        return {}
