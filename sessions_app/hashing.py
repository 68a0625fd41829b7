"""Keyed hashes of personal data: look-ups by email without a digest a dictionary reverses."""

import hashlib
import hmac

from django.conf import settings


def keyed_hash(value: str, *, purpose: str) -> str:
    key = hashlib.sha256(f"chatapi:{purpose}:{settings.HASH_KEY}".encode()).digest()
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def email_hash(email: str) -> str:
    return keyed_hash(email.strip().lower(), purpose="email")


def browser_hash(user_agent: str) -> str:
    return keyed_hash(user_agent, purpose="browser")
