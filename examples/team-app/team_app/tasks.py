"""The team's tasks (stand-ins: replace them with yours). ``routing.TASK_ROUTES`` puts each in a latency class."""

from __future__ import annotations

import logging
from datetime import date, timedelta

import humanize

from team_app.celery import app

logger = logging.getLogger(__name__)


@app.task
def send_receipt(order_id: str, email: str) -> dict:
    """Interactive: the customer is waiting for the mail."""
    logger.info("receipt for order %s sent to %s", order_id, email)
    return {"order_id": order_id, "email": email}


@app.task
def sync_inventory(scope: str) -> dict:
    """Default: every ten minutes from Beat, and on demand."""
    logger.info("inventory synchronized: %s", scope)
    return {"scope": scope}


@app.task
def nightly_report(day: str | None = None) -> dict:
    """Batch: yesterday's figures, once a night from Beat."""
    day = day or (date.today() - timedelta(days=1)).isoformat()
    orders, exported_bytes = 12_345, 48_000_000  # stand-ins for a real query
    summary = f"{day}: {humanize.intcomma(orders)} orders, {humanize.naturalsize(exported_bytes)} exported"
    logger.info("nightly report %s", summary)
    return {"day": day, "summary": summary}
