"""A deferrable sensor per source: wait for the month's delivery (its manifest in the landing
folder) without holding a worker slot, until a deadline; then the source's lateness policy:
'stop' fails the run, 'continue' records a late-delivery incident and lets the run go on."""

from __future__ import annotations

import asyncio
import datetime as dt
import glob
from collections.abc import AsyncIterator
from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from airflow.triggers.base import BaseTrigger, TriggerEvent

POLICIES = ("stop", "continue")


class ManifestTrigger(BaseTrigger):
    """Fires once: with the first file matching `pattern`, or with none at `deadline` (ISO, UTC)."""

    def __init__(self, pattern: str, deadline: str, poke_interval: float = 30.0):
        super().__init__()
        self.pattern, self.deadline, self.poke_interval = pattern, deadline, poke_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "outcomes.ops.sensors.ManifestTrigger",
            {"pattern": self.pattern, "deadline": self.deadline, "poke_interval": self.poke_interval},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        deadline = dt.datetime.fromisoformat(self.deadline)
        while True:
            found = sorted(glob.glob(self.pattern))
            if found:
                yield TriggerEvent({"path": found[0]})
                return
            left = (deadline - dt.datetime.now(dt.UTC)).total_seconds()
            if left <= 0:
                yield TriggerEvent({"path": None})
                return
            await asyncio.sleep(min(self.poke_interval, left))


class DeliverySensor(BaseSensorOperator):
    """Waits for `source`'s delivery of the month the run publishes (see outcomes.ops.knowledge)."""

    template_fields = ("landing", "wait_seconds")

    def __init__(
        self,
        *,
        source: str,
        landing: str,
        policy: str = "stop",
        wait_seconds: str | float = 86_400,
        poke_interval: float = 60.0,
        **kwargs,
    ):
        if policy not in POLICIES:
            raise ValueError(f"late-delivery policy of {source} must be one of {POLICIES}, not {policy!r}")
        super().__init__(poke_interval=poke_interval, **kwargs)
        self.source, self.landing, self.policy, self.wait_seconds = source, landing, policy, wait_seconds

    def _pattern(self, context) -> tuple[str, dt.date]:
        from outcomes.ops.knowledge import expected_month_end, manifest_pattern

        month_end = expected_month_end(_interval_end(context))
        return manifest_pattern(self.landing, self.source, month_end), month_end

    def poke(self, context) -> bool:
        return bool(glob.glob(self._pattern(context)[0]))

    def execute(self, context) -> str | None:
        pattern, _ = self._pattern(context)
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
        deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=float(self.wait_seconds))
        self.defer(trigger=ManifestTrigger(pattern, deadline.isoformat(), self.poke_interval), method_name="arrived")
        return None

    def arrived(self, context, event: dict | None = None) -> str | None:
        if event and event.get("path"):
            return event["path"]
        _, month_end = self._pattern(context)
        reason = (
            f"{self.source} delivery for {month_end:%Y-%m} did not arrive within {float(self.wait_seconds):g} s "
            f"in {self.landing} (policy: {self.policy})"
        )
        if self.policy == "stop":
            raise AirflowFailException(reason)
        from outcomes.ops.notifier import IncidentNotifier

        IncidentNotifier(kind="late", reason=reason).notify(context)
        raise AirflowSkipException(reason)


def _interval_end(context) -> dt.date:
    end = context.get("data_interval_end") or context["logical_date"]
    return end.in_timezone("Europe/London").date() if hasattr(end, "in_timezone") else end.date()
