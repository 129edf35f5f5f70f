"""Tests of the demo catalog and its customers; DEMO_AS_OF for the other tests."""

from __future__ import annotations

import datetime as dt

DEMO_AS_OF = dt.date(2026, 11, 20)
"""The day the tests' demo customers are dated from (the demo itself dates them from the
day it is loaded): fixed, so that a test's customers, and what it expects of them, do not
change with the day it runs. Three days before the 2026-11-23 most tests decide at."""
