"""The ASGI factory `overture serve` hands uvicorn, so that each worker process builds its
own node: `uvicorn --factory overture.runtime.asgi:create`. The settings travel in the
OVERTURE_SERVE environment variable (JSON), which `overture serve` sets."""

from __future__ import annotations

import json
import os
from typing import Any

from overture.runtime.app import create_app
from overture.runtime.node import RuntimeNode, RuntimeSettings

VARIABLE = "OVERTURE_SERVE"


def create() -> Any:
    options: dict[str, Any] = json.loads(os.environ.get(VARIABLE, "{}"))
    design = options.pop("design", True)
    options.setdefault("freeze_startup_objects", True)  # a serving process (node.py)
    node = RuntimeNode(RuntimeSettings(**options))
    design_app = None
    if design:
        from overture.design.app import create_app as create_design

        design_app = create_design(node.db)
    return create_app(node, design_app)
