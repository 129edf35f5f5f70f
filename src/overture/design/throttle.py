"""Failed logins slow guessing down, without letting anyone lock an operator out for good.

Three counters of failures, each forgotten after a quiet quarter of an hour:

- per (account, address) pair: from the 5th failure on, that address must wait before it
  tries that account again, twice as long after each failure (2 s, 4 s, … at most 15 min);
- per address, whatever the accounts: from the 20th failure on, the same for every
  account from that address (one machine spraying passwords);
- per account, whatever the addresses: from the 20th failure on, the account is closed to
  addresses that never logged in to it; an address it logged in from before (the pair's
  `succeeded_at`) still may. Many machines guessing one administrator's password thus
  slow down to nothing, and the administrator, at their usual desk, still gets in.

The address-wide block spares the accounts that logged in from that address before, too:
someone spraying passwords from behind the same NAT or proxy as the office does not lock
the office out.

Every block ends by itself (15 minutes at most); a successful login clears the pair's
and the address's counters; `forget` (an administrator setting the password, or `overture
users unlock`) clears the account's. The counters live in the database, so every worker
and every node of a cluster share them. Every password check uses them: the console's
login and password change, the design API's login and password change.

`attempt` says which blocks a failure started (`Block`), for the audit log
(access.check_password records `login.blocked`). Time comes from `clock`, which tests
replace to move it.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from overture.design.errors import ServiceError
from overture.store.models import LoginAttempts, utcnow

QUIET = dt.timedelta(minutes=15)  # failures are forgotten after this long without one
LONGEST = dt.timedelta(minutes=15)  # no block lasts longer
PAIR_FREE = 4  # failures allowed before waiting, per (account, address)
ADDRESS_FREE = 19  # per address
ACCOUNT_FREE = 19  # per account, for addresses that never logged in to it

clock: Callable[[], dt.datetime] = utcnow  # naive UTC, as the database keeps it


class Throttled(ServiceError):
    """Too many failed logins: try again in `retry_after` seconds."""

    status = 429
    title = "Too many failed logins"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail, retry_after=retry_after)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Block:
    """A block a failure started: who waits (`scope`: pair, address or account), after how
    many failures, until when."""

    scope: str
    failures: int
    seconds: int
    until: dt.datetime


@dataclass(frozen=True)
class _Keys:
    account: str
    address: str

    @property
    def pair(self) -> str:
        return f"{self.account.lower()}\n{self.address}"


def _row(session: Session, scope: str, key: str) -> LoginAttempts | None:
    return session.scalar(
        select(LoginAttempts)
        .where(LoginAttempts.scope == scope, LoginAttempts.key == key[:200])
        .with_for_update()  # PostgreSQL: concurrent attempts on one key take turns
    )


def _take(session: Session, scope: str, key: str) -> LoginAttempts:
    """The row of (scope, key), made when missing (two attempts making it at once: the
    second reads the first's)."""
    row = _row(session, scope, key)
    if row is not None:
        return row
    try:
        with session.begin_nested():
            row = LoginAttempts(scope=scope, key=key[:200], failures=0)
            session.add(row)
    except IntegrityError:
        row = _row(session, scope, key)
        assert row is not None
    return row


def _live(row: LoginAttempts | None, now: dt.datetime) -> LoginAttempts | None:
    """The row, unless its failures are old enough to forget."""
    if row is None or row.first_failure_at is None:
        return None
    if row.blocked_until is None and now - row.first_failure_at > QUIET:
        return None
    if row.blocked_until is not None and now - row.blocked_until > QUIET:
        return None
    return row


def attempt(session: Session, account: str, address: str) -> list[Block]:
    """Before a password is checked: raise Throttled when this address may not try this
    account now; otherwise count the attempt as a failure already (`succeeded` takes it
    back), so that attempts made at the same moment cannot all pass the check before any
    is counted, and return the blocks it starts if it fails. The caller commits it before
    checking the password."""
    # SQLite: the write lock first, so that the reads below see every earlier attempt
    session.execute(
        update(LoginAttempts)
        .where(LoginAttempts.scope == "-", LoginAttempts.key == "-")
        .values(failures=LoginAttempts.failures)
    )
    now = clock()
    keys = _Keys(account, address)
    rows = {
        "pair": (_take(session, "pair", keys.pair), PAIR_FREE),
        "address": (_take(session, "address", address), ADDRESS_FREE),
        "account": (_take(session, "account", account.lower()), ACCOUNT_FREE),
    }
    known = rows["pair"][0].succeeded_at is not None  # this address logged in to it before
    waits = [
        (row.blocked_until - now).total_seconds()
        for scope, (row, _free) in rows.items()
        if (scope == "pair" or not known)
        and _live(row, now) is not None
        and row.blocked_until is not None
        and row.blocked_until > now
    ]
    if waits:
        wait = max(1, math.ceil(max(waits)))
        raise Throttled(
            f"too many failed logins: try again in {wait} s (each failure doubles the wait, "
            "15 minutes at most; an administrator can reset a forgotten password)",
            retry_after=wait,
        )
    blocks = []
    for scope, (row, free) in rows.items():
        if _live(row, now) is None:
            row.failures, row.first_failure_at, row.blocked_until = 0, now, None
        row.failures += 1
        if row.failures > free:
            seconds = min(2.0 ** (row.failures - free), LONGEST.total_seconds())
            row.blocked_until = now + dt.timedelta(seconds=seconds)
            blocks.append(Block(scope, row.failures, int(seconds), row.blocked_until))
    session.flush()
    return blocks


def succeeded(session: Session, account: str, address: str) -> None:
    """The password was right: take the attempt back, forget the pair's and the address's
    failures, and remember that this address logs in to this account."""
    keys = _Keys(account, address)
    now = clock()
    pair = _take(session, "pair", keys.pair)
    pair.failures, pair.first_failure_at, pair.blocked_until = 0, None, None
    pair.succeeded_at = now
    address_row = _take(session, "address", address)
    address_row.failures, address_row.first_failure_at, address_row.blocked_until = 0, None, None
    account_row = _take(session, "account", account.lower())
    account_row.failures = max(0, account_row.failures - 1)
    session.flush()


def forget(session: Session, account: str) -> int:
    """An administrator reset the account's password, or lifted its blocks (`overture users
    unlock`): its failures, from every address, no longer count. How many blocks were on."""
    name = account.lower()
    now = clock()
    lifted = 0
    for row in session.scalars(
        select(LoginAttempts).where(
            ((LoginAttempts.scope == "account") & (LoginAttempts.key == name))
            | ((LoginAttempts.scope == "pair") & LoginAttempts.key.startswith(f"{name}\n"))
        )
    ):
        lifted += row.blocked_until is not None and row.blocked_until > now
        row.failures, row.first_failure_at, row.blocked_until = 0, None, None
    session.flush()
    return lifted
