"""`salesloop worker` and `salesloop cron`: the two long-running processes besides the web app."""

from __future__ import annotations

import logging

import click

logger = logging.getLogger(__name__)


def _redis_url() -> str:
    from connector.settings import Settings

    url = Settings.from_env().redis_url
    if not url:
        raise click.ClickException("REDIS_URL is not set: without it jobs run in-process (try `salesloop demo`)")
    return url


@click.command("worker")
@click.option("--burst", is_flag=True, help="Exit when the queues are empty.")
@click.option("--name", default=None, help="Worker name (default: host and pid).")
def worker(burst: bool, name: str | None) -> None:
    """Run an RQ worker on the interactive, default and bulk queues, in that priority."""
    from redis import Redis
    from rq import Queue, Worker

    from jobs.rq import queues, tasks

    conn = Redis.from_url(_redis_url())
    tasks._context()  # fail fast on bad settings or an old schema, before taking jobs
    listen = [Queue(q, connection=conn) for q in queues.QUEUE_ORDER]
    Worker(listen, connection=conn, name=name).work(burst=burst, with_scheduler=True, logging_level="WARNING")


@click.command("cron")
def cron() -> None:
    """Run the scheduler: sync every 5 minutes, 07:00 at-risk lists, nightly learning, weekly proposals."""
    from redis import Redis

    from jobs.rq.schedules import build_scheduler

    build_scheduler(Redis.from_url(_redis_url())).start()
