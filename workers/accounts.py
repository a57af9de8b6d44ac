"""Museum manager accounts: registration and password checks with argon2id.

A museum row is its manager's account: the museum id is the login name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from workers.database import Database, MuseumRow

log = structlog.get_logger(__name__)

MUSEUM_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MIN_PASSWORD_LENGTH = 10
# argon2 hashes the whole password, so an unbounded one would let a client buy CPU time cheaply.
MAX_PASSWORD_LENGTH = 1024
MAX_NAME_LENGTH = 200

# argon2-cffi's defaults: argon2id with RFC 9106's second recommended option (t=3, 64 MiB, p=4).
_hasher = PasswordHasher()
# Verified against when the museum id is unknown, so a wrong id takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not a password of any account")


@dataclass(frozen=True)
class AccountError(ValueError):
    """Invalid registration input: `field` is the form field at fault, `message` describes the fix.

    `taken` is true when the museum id is valid but already registered.
    """

    field: str
    message: str
    taken: bool = False

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def register_museum(database: Database, museum_id: str, name: str, password: str) -> MuseumRow:
    """Create a museum with its manager's password; raise AccountError for invalid or taken input."""
    museum_id = museum_id.strip()
    name = name.strip()
    if not MUSEUM_ID.match(museum_id):
        raise AccountError("museum_id", "use 1 to 64 letters, digits, '-' or '_'")
    if not name:
        raise AccountError("name", "missing; enter the museum's name as visitors should see it")
    if len(name) > MAX_NAME_LENGTH:
        raise AccountError("name", f"longer than {MAX_NAME_LENGTH} characters; shorten it")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError("password", f"shorter than {MIN_PASSWORD_LENGTH} characters; choose a longer one")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError("password", f"longer than {MAX_PASSWORD_LENGTH} characters; choose a shorter one")
    if not database.create_museum(museum_id, name, _hasher.hash(password)):
        raise AccountError("museum_id", f"{museum_id!r} is already registered; choose another id or log in", taken=True)
    log.info("museum_registered", museum=museum_id)
    return database.get_museum(museum_id)


def authenticate(database: Database, museum_id: str, password: str) -> MuseumRow | None:
    """Return the museum when the password is its manager's; None otherwise.

    Museums created by `pain import` have no password, so nobody can log in as them.
    """
    museum = database.get_museum(museum_id.strip()) if MUSEUM_ID.match(museum_id.strip()) else None
    stored = museum.password_hash if museum is not None else None
    password = password[:MAX_PASSWORD_LENGTH + 1]
    try:
        _hasher.verify(stored or _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if stored is None:
        return None
    if _hasher.check_needs_rehash(stored):
        database.set_password_hash(museum.id, _hasher.hash(password))
    return museum
