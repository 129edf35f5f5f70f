"""The demo: a retail bank's catalog and a deterministic generator of its customers."""

from __future__ import annotations

from pathlib import Path

CATALOG_PATH = Path(__file__).parent / "bank"
"""The demo catalog folder (also at examples/bank in the repository)."""
