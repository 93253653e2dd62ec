"""Starting Flower's simulation engine (Ray) so that a slow start fails and is retried, never
hangs.

Ray 2.55's raylet waits 15 seconds for its dashboard agent (a Python process) to write its
port files and aborts when it has not; on a loaded machine the agent's start can take longer.
``ray.init`` then raises after 30 seconds ("the current node timed out during startup"), but
when Flower's ``run_simulation`` calls it, the failure stays in Flower's engine thread and the
server waits for clients forever. :func:`start_ray` starts Ray before ``run_simulation`` (which
then uses it, and shuts it down at the end), the way Flower would (the driver's ``sys.path``
passed to the workers as ``PYTHONPATH``), and tries again after a failed start.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

from ailedger.errors import AiledgerError

__all__ = ["SimulationEngineError", "start_ray"]

logger = logging.getLogger("ailedger.fl")


class SimulationEngineError(AiledgerError):
    """Flower's simulation engine (Ray) could not be started."""


def start_ray(num_cpus: int, *, attempts: int = 3, **init_args: Any) -> int:
    """Start Ray for ``run_simulation`` unless it runs already; the attempts it took.
    Raises :class:`SimulationEngineError` after ``attempts`` failed starts."""
    import ray

    if ray.is_initialized():
        return 0
    pythonpath = os.pathsep.join(sys.path)
    if os.environ.get("PYTHONPATH"):
        pythonpath = f"{pythonpath}{os.pathsep}{os.environ['PYTHONPATH']}"
    os.environ["PYTHONPATH"] = pythonpath
    init_args.setdefault("include_dashboard", False)
    last: Exception | None = None
    for attempt in range(1, attempts + 1):
        try:
            ray.init(
                num_cpus=num_cpus,
                runtime_env={"env_vars": {"PYTHONPATH": pythonpath}},
                **init_args,
            )
            return attempt
        except Exception as exc:  # Ray raises plain Exception when its node does not start
            last = exc
            logger.warning("Ray did not start (attempt %d of %d): %s", attempt, attempts, exc)
            ray.shutdown()
            time.sleep(1.0)
    raise SimulationEngineError(
        f"Flower's simulation engine (Ray) did not start in {attempts} attempts: {last}",
        hint="the machine may be overloaded; see /tmp/ray/session_latest/logs/raylet.out",
    )
