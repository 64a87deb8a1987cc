"""One access line per call, on both doors (transport layer).

Written by the logger `arbiter.access` with the keys the README's "Metrics and logs"
names (request_id, method, tenant, status, duration_ms, decision_id), which
the JSON log format turns into one object a line. Only built when asked for
(`--log-format json`), so the default pays nothing per call.
"""

from __future__ import annotations

import logging

log = logging.getLogger("arbiter.access")


class AccessLog:
    """Writes access lines."""

    def record(
        self,
        *,
        request_id: str,
        method: str,
        tenant: str | None,
        status: str | int,
        duration_s: float,
        decision_id: str | None = None,
    ) -> None:
        log.info(
            "%s %s %s",
            method,
            status,
            tenant or "-",
            extra={
                "request_id": request_id,
                "method": method,
                "tenant": tenant,
                "status": status,
                "duration_ms": round(duration_s * 1000, 3),
                "decision_id": decision_id or None,
            },
        )
