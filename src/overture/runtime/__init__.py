"""The runtime service: what touchpoints call in real time (DESIGN.md §3, §7).

plans.py      each environment's current deployment, compiled; swapped atomically
service.py    decisions, events and sessions (no HTTP)
ledger.py     what presentation policies count, and exact claims (sql_ledger.py,
              redis_ledger.py)
recorder.py   group commit of propositions and events
profiles.py   profiles looked up in the audience's table
sessions.py   sessions in memory or in Redis
keys.py       runtime API keys, scoped to an environment
api.py        the native API (/v1) on lean Starlette routes, msgspec bodies
servlet.py    the Interact-compatible servlet API
node.py       the parts put together; app.py the ASGI application
"""

from overture.runtime.app import create_app
from overture.runtime.node import RuntimeNode, RuntimeSettings

__all__ = ["RuntimeNode", "RuntimeSettings", "create_app"]
