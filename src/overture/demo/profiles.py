"""A deterministic population of bank customers for the demo catalog.

Row i is a pure function of (seed, i, as_of): rows are generated in chunks of 10,000 from
a generator seeded with (seed, chunk), so `profile("C0000042")` regenerates one customer
without the others and `overture demo-profiles --rows N` writes the same customers every
time. Their dates (customer since, last login) count back from `as_of`, by default the day
they are generated (today, UTC), so the demo never ages: a customer's last login is
always the same number of days before the day the demo was loaded. The same seed on
another day gives the same customers, their dates shifted by whole days.
Attributes are correlated the way a bank's would be (students are young and poor,
mortgages come with age and income, app use falls with age), so that every offer of the
demo catalog finds an audience.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

CHUNK = 10_000
PRODUCTS = (
    "current_account",
    "savings_account",
    "credit_card",
    "debit_card",
    "mortgage",
    "personal_loan",
    "car_loan",
    "investment_account",
    "pension",
    "home_insurance",
    "travel_insurance",
    "life_insurance",
)
COUNTRIES = ("FR", "DE", "ES", "IT", "NL", "BE", "GB")
LANGUAGES = {"FR": "fr", "DE": "de", "ES": "es", "IT": "it", "NL": "nl", "BE": "fr", "GB": "en"}
FIRST_NAMES = (
    "Emma",
    "Louis",
    "Léa",
    "Lukas",
    "Sofia",
    "Mateo",
    "Giulia",
    "Noah",
    "Anna",
    "Hugo",
    "Lucía",
    "Finn",
    "Chloé",
    "Daan",
    "Olivia",
    "Jan",
    "Marie",
    "Leon",
    "Alice",
    "Pablo",
    "Ines",
    "Tom",
    "Sara",
    "Elias",
)
LAST_NAMES = (
    "Martin",
    "Müller",
    "García",
    "Rossi",
    "de Jong",
    "Peeters",
    "Smith",
    "Bernard",
    "Schmidt",
    "López",
    "Russo",
    "Jansen",
    "Dubois",
    "Fischer",
    "Fernández",
    "Bianchi",
    "Visser",
    "Claes",
    "Jones",
    "Moreau",
)

SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("first_name", pa.string()),
        ("last_name", pa.string()),
        ("age", pa.int64()),
        ("country", pa.string()),
        ("preferred_language", pa.string()),
        ("employment", pa.string()),
        ("is_student", pa.bool_()),
        ("income", pa.float64()),
        ("balance", pa.float64()),
        ("credit_score", pa.int64()),
        ("monthly_card_spend", pa.float64()),
        ("customer_since", pa.date32()),
        ("last_login", pa.timestamp("us")),
        ("products", pa.list_(pa.string())),
        ("has_mobile_app", pa.bool_()),
        ("email_opt_in", pa.bool_()),
    ]
)


def customer_id(row: int) -> str:
    return f"C{row + 1:07d}"


def row_of(customer: str) -> int:
    """The row number of a demo customer id (C0000001 is row 0)."""
    if (
        len(customer) != 8
        or customer[0] != "C"
        or not customer[1:].isdigit()
        or customer == "C0000000"
    ):
        raise ValueError(f"{customer!r} is not a demo customer id (C0000001, C0000002, …)")
    return int(customer[1:]) - 1


def today() -> dt.date:
    """Today in UTC: the day the demo's dates count back from unless told otherwise."""
    return dt.datetime.now(dt.UTC).date()


def generate(rows: int, seed: int = 7, as_of: dt.date | None = None) -> pa.Table:
    """The first `rows` customers, as at the start of `as_of` (default: today, UTC): they
    became customers by that day and last logged in before it began."""
    day = today() if as_of is None else as_of
    chunks = [
        _chunk(seed, k, min(CHUNK, rows - k * CHUNK), day)
        for k in range((rows + CHUNK - 1) // CHUNK)
    ]
    return pa.concat_tables(chunks) if chunks else SCHEMA.empty_table()


def profile(customer: str, seed: int = 7, as_of: dt.date | None = None) -> dict[str, Any]:
    """One customer's profile, as a dict of Python values (dated as `generate` dates it)."""
    row = row_of(customer)
    day = today() if as_of is None else as_of
    table = _chunk(seed, row // CHUNK, row % CHUNK + 1, day)
    return table.slice(row % CHUNK, 1).to_pylist()[0]  # type: ignore[no-any-return]


def write(table: pa.Table, path: str | Path) -> None:
    """Parquet or CSV by extension (in CSV, products are joined with ';')."""
    import pyarrow.compute as pc

    out = Path(path)
    if out.suffix == ".parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, out)
    elif out.suffix == ".csv":
        import pyarrow.csv as pcsv

        joined = pc.binary_join(table.column("products"), ";")
        idx = table.schema.get_field_index("products")
        pcsv.write_csv(table.set_column(idx, "products", joined), out)
    else:
        raise ValueError(f"write to a .parquet or a .csv file, not {out.name!r}")


def _chunk(seed: int, k: int, size: int, as_of: dt.date) -> pa.Table:
    """Rows k*CHUNK … k*CHUNK+size-1. Always draws a full chunk, so a row's values do not
    depend on how many rows are asked for; `as_of` only moves the dates (nothing drawn
    depends on it)."""
    rng = np.random.default_rng([seed, k])
    m = CHUNK
    age = np.clip(rng.normal(44, 17, m), 16, 92).astype(np.int64)
    student = (age <= 25) & (rng.random(m) < 0.55) | (rng.random(m) < 0.005) & (age < 40)
    retired = (age >= 65) & (rng.random(m) < 0.9)
    work = rng.choice(
        np.array(["employed", "self_employed", "unemployed"]), m, p=[0.78, 0.14, 0.08]
    )
    employment = np.where(student, "student", np.where(retired, "retired", work))
    median = np.select(
        [student, retired, employment == "unemployed", employment == "self_employed"],
        [6_000, 26_000, 9_000, 52_000],
        43_000,
    )
    income = np.round(median * rng.lognormal(0, 0.55, m), -2)
    balance = np.round(
        np.maximum(0, (income * 0.15 + (age - 16) * 400) * rng.lognormal(0, 1.0, m)), 2
    )
    credit = np.clip(
        rng.normal(690, 75, m) - np.where(employment == "unemployed", 80, 0), 300, 850
    ).astype(np.int64)
    spend = np.round(income / 12 * 0.25 * rng.lognormal(0, 0.5, m), 2)
    country = rng.choice(np.array(COUNTRIES), m, p=[0.3, 0.25, 0.15, 0.12, 0.08, 0.05, 0.05])
    tenure_days = (rng.random(m) * np.minimum(age - 16, 36) * 365.25).astype(np.int64)
    since = np.datetime64(as_of, "D") - tenure_days.astype("timedelta64[D]")
    login_s = (rng.exponential(12, m) * 86400).astype(np.int64)
    last_login = np.datetime64(as_of, "D").astype("datetime64[us]") - login_s.astype(
        "timedelta64[s]"
    )
    app = rng.random(m) < np.clip(1.05 - age / 90, 0.2, 0.92)
    adult = age >= 18
    owns = np.column_stack(
        [
            rng.random(m) < 0.9,  # current_account
            rng.random(m) < 0.5,  # savings_account
            adult & (credit >= 600) & (rng.random(m) < 0.45),  # credit_card
            rng.random(m) < 0.8,  # debit_card
            (age >= 28) & (age <= 70) & (income > 30_000) & (rng.random(m) < 0.4),  # mortgage
            adult & (rng.random(m) < 0.12),  # personal_loan
            adult & (rng.random(m) < 0.08),  # car_loan
            (balance > 20_000) & (rng.random(m) < 0.35),  # investment_account
            (age >= 30) & (rng.random(m) < 0.25),  # pension
            np.zeros(m, dtype=bool),  # home_insurance: set below, mostly with a mortgage
            rng.random(m) < 0.12,  # travel_insurance
            (age >= 25) & (rng.random(m) < 0.2),  # life_insurance
        ]
    )
    owns[:, 9] = owns[:, 4] & (rng.random(m) < 0.55) | (rng.random(m) < 0.05)
    null_income = rng.random(m) < 0.04
    null_credit = (rng.random(m) < 0.06) | (student & (rng.random(m) < 0.5))
    columns = {
        "customer_id": [customer_id(k * CHUNK + i) for i in range(m)],
        "first_name": np.array(FIRST_NAMES)[rng.integers(0, len(FIRST_NAMES), m)],
        "last_name": np.array(LAST_NAMES)[rng.integers(0, len(LAST_NAMES), m)],
        "age": age,
        "country": country,
        "preferred_language": np.vectorize(LANGUAGES.get)(country),
        "employment": employment,
        "is_student": student,
        "income": pa.array(income, mask=null_income),
        "balance": balance,
        "credit_score": pa.array(credit, mask=null_credit),
        "monthly_card_spend": spend,
        "customer_since": since,
        "last_login": last_login,
        "products": _products(owns),
        "has_mobile_app": app,
        "email_opt_in": rng.random(m) < 0.6,
    }
    table = pa.table({k: columns[k] for k in SCHEMA.names}, schema=SCHEMA)
    return table.slice(0, size)


def _products(owns: np.ndarray[Any, Any]) -> pa.ListArray:
    counts = owns.sum(axis=1)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    values = np.array(PRODUCTS)[np.nonzero(owns)[1]]
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, pa.string()))
