"""The refresh's alert: an Airflow notifier that records an incident in the warehouse's `ops`
schema and e-mails it through the configured SMTP server.

SMTP is configured by $OUTCOMES_SMTP_HOST, $OUTCOMES_SMTP_PORT (default 25), $OUTCOMES_ALERT_FROM
and $OUTCOMES_ALERT_TO (comma-separated). Without a host the incident is still recorded, and the
row says no e-mail was sent.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import smtplib
from email.message import EmailMessage

from airflow.sdk import BaseNotifier

log = logging.getLogger(__name__)


def send_mail(subject: str, body: str) -> str:
    """Send one e-mail; return where it went (or why it was not sent)."""
    host = os.environ.get("OUTCOMES_SMTP_HOST", "")
    recipients = [x.strip() for x in os.environ.get("OUTCOMES_ALERT_TO", "").split(",") if x.strip()]
    if not host or not recipients:
        return "no e-mail: OUTCOMES_SMTP_HOST or OUTCOMES_ALERT_TO not set"
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = os.environ.get("OUTCOMES_ALERT_FROM", "outcomes-refresh@localhost")
    message["To"] = ", ".join(recipients)
    message.set_content(body)
    port = int(os.environ.get("OUTCOMES_SMTP_PORT", "25"))
    with smtplib.SMTP(host, port, timeout=30) as smtp:
        smtp.send_message(message)
    return f"smtp://{host}:{port} to {', '.join(recipients)}"


class IncidentNotifier(BaseNotifier):
    """`on_failure_callback`: the incident row and the e-mail. `kind` is 'failed' or 'late'."""

    def __init__(self, kind: str = "failed", reason: str | None = None):
        super().__init__()
        self.kind, self.reason = kind, reason

    def notify(self, context) -> None:
        from outcomes.eventstore import connect
        from outcomes.ops.incidents import Incident, record
        from outcomes.warehouse import resolve_target

        ti = context["ti"]
        exception = context.get("exception")
        reason = self.reason or (f"{type(exception).__name__}: {exception}" if exception else "task failed")
        incident = Incident(
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            task_id=ti.task_id,
            map_index=getattr(ti, "map_index", None),
            try_number=getattr(ti, "try_number", None),
            kind=self.kind,
            reason=reason[:4000],
            occurred_at=dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0),
        )
        try:
            incident.notified = send_mail(incident.subject(), incident.body())
        except (OSError, smtplib.SMTPException) as exc:  # the row must be written whatever the mail did
            incident.notified = f"e-mail failed: {exc}"
        log.warning("incident: %s (%s)", incident.body().strip(), incident.notified)
        params = context.get("params") or {}
        with connect(resolve_target(params.get("warehouse") or None)) as backend:
            record(backend, incident)
