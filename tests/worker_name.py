"""`core.hostname_callable` for the Celery deployment test: two workers on one machine report
different host names ($TEST_WORKER_NAME), so a task instance shows which worker ran it."""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    return os.environ.get("TEST_WORKER_NAME") or socket.getfqdn()
