"""Who may do what: operators' passwords, login tokens, runtime API keys, roles."""

from overture.auth.roles import PERMISSIONS, ROLES, Permission, allowed
from overture.auth.secrets import (
    hash_password,
    hash_secret,
    new_api_key,
    new_password,
    new_token,
    verify_password,
)

__all__ = [
    "PERMISSIONS",
    "ROLES",
    "Permission",
    "allowed",
    "hash_password",
    "hash_secret",
    "new_api_key",
    "new_password",
    "new_token",
    "verify_password",
]
