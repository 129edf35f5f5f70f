"""`overture counters rebuild`: on the database directly, as an operator runs it after
Redis lost its data or when counters look wrong (on SQLite and PostgreSQL, and Redis)."""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets

import pytest
import redis
from sqlalchemy import delete
from typer.testing import CliRunner

from overture.cli import app
from overture.store import Database
from overture.store.history import InventoryCounterRow
from tests.deployed import Deployed, deploy
from tests.runtime.catalogs import SHOP


def rebuild(database: Database, *extra: str, env: str = "staging") -> tuple[int, str]:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(
        app, ["counters", "rebuild", "--env", env, "--database", database.url, *extra]
    )
    return result.exit_code, result.output


def spend_rare(database: Database) -> None:
    """Three visitors each get BIG then RARE on the sidebar: RARE's counter is at 3."""
    with Deployed(database, deploy(database, {"shop.yaml": SHOP})).client() as api:
        for i in range(3):
            body = {"profile_id": f"v{i}", "placements": [{"placement": "sidebar", "count": 2}]}
            offers = api.post("/v1/decisions", json=body).json()["placements"][0]["offers"]
            assert [o["offer"] for o in offers] == ["BIG", "RARE"]


def test_counters_rebuild(database: Database) -> None:
    spend_rare(database)
    with database.session() as s:
        s.execute(delete(InventoryCounterRow))  # lost
    code, output = rebuild(database)
    assert code == 0, output
    assert "Rebuilt the counters of staging (deployment #1) from its history" in output
    assert re.search(r"database\s+1 inventory counter\n", output)
    assert "Redis" not in output
    today = dt.datetime.now(dt.UTC).date().isoformat()
    assert re.search(rf"RARE\s*│\s*{today}\s*│\s*3", output), output
    with database.session() as s:
        assert s.query(InventoryCounterRow).one().used == 3

    code, output = rebuild(database, env="stagin")
    assert code == 1 and "no environment 'stagin'; did you mean 'staging'?" in output


def test_counters_rebuild_with_redis(database: Database) -> None:
    url = os.environ.get("OVERTURE_TEST_REDIS_URL")
    if not url:
        pytest.skip("set OVERTURE_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/0); .ci/run sets it")
    spend_rare(database)  # counted in the database: Redis has nothing yet
    prefix = f"test-{secrets.token_hex(4)}"
    client = redis.Redis.from_url(url)
    try:
        code, output = rebuild(database, "--redis", url, "--redis-prefix", prefix)
        assert code == 0, output
        assert re.search(r"database\s+1 inventory counter\n", output)
        assert re.search(
            r"Redis\s+1 inventory counter, 3 profiles \(6 history entries\), 0 emptied", output
        )
        today = dt.datetime.now(dt.UTC).date().isoformat()
        assert client.get(f"{prefix}:staging:inventory:RARE:{today}") == b"3"
        assert client.zcard(f"{prefix}:staging:visitor:v0:p") == 2

        code, output = rebuild(database, "--redis", "redis://127.0.0.1:9/0")
        assert code == 1 and "cannot use Redis at redis://127.0.0.1:9/0" in output
    finally:
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()
