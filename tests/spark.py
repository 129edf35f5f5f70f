"""What every Spark test module needs first: pyspark, and Java 17+ to run it (the module
is skipped, saying why, without them), and its marks: one JVM, so under pytest-xdist
(--dist loadgroup) every Spark test runs in the same worker."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

MARKS = [pytest.mark.slow, pytest.mark.xdist_group("spark")]


def require_spark() -> None:
    """Skip the calling module unless pyspark and a Java runtime are there."""
    pytest.importorskip(
        "pyspark",
        reason="the Spark tests need pyspark: pip install -e '.[dev]' (or '.[spark]')",
    )
    java_home = os.environ.get("JAVA_HOME", "")
    if shutil.which("java") is None and not (java_home and (Path(java_home) / "bin/java").exists()):
        pytest.skip(
            "Spark needs Java 17+, and there is no `java` on PATH (nor JAVA_HOME): "
            "apt-get install openjdk-17-jre-headless",
            allow_module_level=True,
        )
