"""Passwords, tokens and keys.

Passwords are hashed with argon2id (argon2-cffi's defaults, which follow RFC 9106's
recommendations): slow on purpose, salted, and rehashed when the parameters change.
Bearer tokens and API keys are 256 random bits: a fast hash (SHA-256) is enough to store
them, since nobody can guess their way to a match, and lets a request be checked with one
indexed lookup.
"""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
MIN_PASSWORD_LENGTH = 10


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def verify_password(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)


def new_password() -> str:
    """A random password for a first administrator (shown once, never stored in clear)."""
    return secrets.token_urlsafe(15)


def new_token() -> str:
    return "ovt_" + secrets.token_urlsafe(32)


def new_api_key() -> str:
    return "ovk_" + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
