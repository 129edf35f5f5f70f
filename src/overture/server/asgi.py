"""The ASGI factory `overture serve` hands uvicorn, so that each worker process builds its
own node: `uvicorn --factory overture.server.asgi:create`. The settings travel in the
OVERTURE_SERVE environment variable (JSON), which `overture serve` sets; its
`client_limits` are for the HTTP protocol (server/protocol.py), not the node."""

from __future__ import annotations

import json
import os
from typing import Any

from overture.runtime.node import RuntimeNode, RuntimeSettings
from overture.server import create_server

VARIABLE = "OVERTURE_SERVE"


def create() -> Any:
    options: dict[str, Any] = json.loads(os.environ.get(VARIABLE, "{}"))
    design = options.pop("design", True)
    options.pop("client_limits", None)  # read by server/protocol.py
    demo = bool(options.get("accept_decision_times", False))  # the console's traffic button
    options.setdefault("freeze_startup_objects", True)  # a serving process (node.py)
    return create_server(RuntimeNode(RuntimeSettings(**options)), design=design, demo=demo)
