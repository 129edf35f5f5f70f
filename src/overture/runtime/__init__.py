"""The runtime service: what touchpoints call in real time (DESIGN.md §3, §7).

plans.py      each environment's current deployment, compiled; swapped atomically
service.py    decisions, events and sessions (no HTTP)
profiles.py   profiles looked up in the audience's table (cached)
sessions.py   sessions in memory or in Redis
keys.py       runtime API keys, scoped to an environment
api.py        the native API (/v1) on lean Starlette routes, msgspec bodies
servlet.py    the Interact-compatible servlet API
node.py       the parts put together; app.py the ASGI application

What a decision counts and claims, and how propositions and events are recorded, is the
history package's (overture.history: ledgers, recorder); the combined server (design API
beside the runtime) is put together in overture.server.
"""

from overture.runtime.app import create_app
from overture.runtime.node import RuntimeNode, RuntimeSettings

__all__ = ["RuntimeNode", "RuntimeSettings", "create_app"]
