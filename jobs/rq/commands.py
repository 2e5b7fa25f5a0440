"""`salesloop worker` and `salesloop cron`: the two long-running processes besides the web app."""

from __future__ import annotations

import json
import logging

import click
from redis import Redis

from connector.settings import Settings
from jobs import queues
from jobs.engine.writes_status import installations_status
from jobs.rq import tasks
from jobs.rq.schedules import build_scheduler
from jobs.rq.steady import run_cron, run_worker, wait_for_redis

logger = logging.getLogger(__name__)


def _redis_url() -> str:

    url = Settings.from_env().redis_url
    if not url:
        raise click.ClickException("REDIS_URL is not set: without it jobs run in-process (try `salesloop demo`)")
    return url


@click.command("worker")
@click.option("--burst", is_flag=True, help="Exit when the queues are empty.")
@click.option("--name", default=None, help="Worker name (default: host and pid).")
def worker(burst: bool, name: str | None) -> None:
    """Run an RQ worker on the interactive, default and bulk queues, in that priority."""
    conn = Redis.from_url(_redis_url())
    _, store = tasks._context()  # fail fast on bad settings or an old schema, before taking jobs
    store.engine.dispose()  # fork with no connection open: each work-horse opens its own
    wait_for_redis(conn)
    run_worker(conn, queues.QUEUE_ORDER, name=name, burst=burst)


@click.command("cron")
def cron() -> None:
    """Run the scheduler: sync every 5 minutes, 07:00 at-risk lists, nightly learning, weekly proposals."""
    conn = Redis.from_url(_redis_url())
    wait_for_redis(conn)
    run_cron(conn, build_scheduler)


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of lines.")
def status(as_json: bool) -> None:
    """Every installation's state and its writes: sent, waiting to be sent, and given up (with the reason)."""
    _, store = tasks._context()
    rows = installations_status(store)
    if as_json:
        click.echo(json.dumps({"installations": rows}, default=str))
        return
    for row in rows:
        click.echo(f"{row['crm']} {row['tenant_id']} ({row['status']}): {row['writes']['sent']} writes sent, "
                   f"{row['writes']['waiting']} waiting, {row['writes']['given_up']} given up")
        for failure in row["given_up"]:
            click.echo(f"  given up: {failure['kind']} {failure['key']}: {failure['reason']}")
