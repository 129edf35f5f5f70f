"""`overture demo-traffic`: fill a demo server's past days with decisions and events sent
through its runtime API, so that the reports show something true (overture.demo.traffic).

    make demo                                   # in one terminal
    overture demo-traffic --database demo-out/overture.db --days 14
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from overture.cli._app import app, escape, fail, out
from overture.cli.server import DatabaseOption, _open


@app.command("demo-traffic")
def demo_traffic(
    database: DatabaseOption = None,
    url: Annotated[str, typer.Option(help="The demo server.")] = "http://127.0.0.1:8000",
    env: Annotated[
        str | None,
        typer.Option("--env", help="Environment (default: production if deployed, else staging)."),
    ] = None,
    days: Annotated[int, typer.Option(min=1, max=90, help="Past days to fill.")] = 14,
    visits: Annotated[int, typer.Option(min=1, max=100_000, help="Visits a weekday.")] = 400,
    seed: Annotated[int, typer.Option(help="The same seed sends the same traffic.")] = 7,
) -> None:
    """Send DAYS days of demo traffic (decisions, presentations, acceptances, rejections)
    to a demo server (`overture serve --demo --accept-decision-times`, as `make demo` runs
    it), through its runtime API, with a key made for it in the server's database and
    revoked at the end."""
    import httpx

    from overture.demo import profiles
    from overture.demo.traffic import drive
    from overture.design import access
    from overture.design.catalog import Actor
    from overture.history.deployed import current_deployments

    db = _open(database)
    deployed = {name for name, number in current_deployments(db).items() if number}
    chosen = env or ("production" if "production" in deployed else "staging")
    if chosen not in deployed:
        fail(
            f"[red]{escape(chosen)} has no deployment yet[/]: deploy the demo catalog first "
            "(the console's Deployments page, or overture deploy)",
            1,
        )
    with db.session() as s:
        made = access.create_api_key(s, Actor("demo-traffic"), chosen, "demo traffic")
        key_id = made.record.id
    customers = profiles.generate(10_000, as_of=profiles.today()).to_pylist()
    client = httpx.Client(base_url=url, headers={"X-API-Key": made.key}, timeout=30)

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = client.post(path, json=body)
        if answer.status_code != 200:
            hint = (
                " (start the server with --accept-decision-times, as make demo does)"
                if "demo server" in answer.text
                else ""
            )
            fail(
                f"[red]{path} answered {answer.status_code}[/]: {escape(answer.text[:300])}{hint}",
                1,
            )
        result: dict[str, Any] = answer.json()
        return result

    try:
        sent = drive(
            post,
            customers,
            days=days,
            visits_per_day=visits,
            seed=seed,
            progress=lambda s: out.print(
                f"day {s.days}/{days + 1}: {s.decisions:,} decisions, {s.events:,} events",
                end="\r",
            ),
        )
    except httpx.HTTPError as exc:
        fail(f"[red]cannot reach {escape(url)}[/] ({exc}): is `make demo` running?", 1)
    finally:
        client.close()
        with db.session() as s:
            access.revoke_api_key(s, Actor("demo-traffic"), key_id)
        db.dispose()
    out.print(
        f"\nSent {sent.decisions:,} decisions ({sent.propositions:,} offers) and "
        f"{sent.events:,} events to {chosen} over {days} days. The console's Performance "
        f"page shows them: {url}/console/performance"
    )
