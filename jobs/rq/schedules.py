"""The recurring jobs, on rq's own cron scheduler (rq >= 2.5: rq.cron.CronScheduler).

rq's cron matches the scheduler host's local time, while the morning list is due at 07:00
in each tenant's time zone; so a quarter-hourly dispatcher enqueues each tenant's
morning job when its local hour comes, with a per-day job id that keeps it to one.
"""

from __future__ import annotations

from redis import Redis
from rq.cron import CronScheduler

from jobs import lifecycle, queues
from jobs.rq import tasks

SYNC_EVERY_S = 5 * 60

SCHEDULE = (
    # (function, kwargs, interval seconds or None, cron expression or None, queue)
    (tasks.dispatch, {"kind": "sync"}, SYNC_EVERY_S, None, queues.DEFAULT),
    (tasks.dispatch_morning, {"hour": 7}, None, "*/15 * * * *", queues.DEFAULT),
    (tasks.dispatch, {"kind": "learn"}, None, "30 2 * * *", queues.BULK),
    (tasks.dispatch, {"kind": "weekly"}, None, "0 5 * * 1", queues.BULK),
    (tasks.recover_abandoned, {}, 60, None, queues.INTERACTIVE),
    (lifecycle.run_token_heartbeat, {}, None, "15 3 * * *", queues.BULK),  # Salesforce orgs idle 25 days
    (lifecycle.run_purge, {}, None, "45 3 * * *", queues.BULK),  # tenants past their retention
)


def build_scheduler(connection: Redis) -> CronScheduler:
    """A CronScheduler with every salesloop schedule registered."""
    scheduler = CronScheduler(connection=connection, name="")
    for func, kwargs, interval, cron, queue in SCHEDULE:
        name = f"salesloop.{func.__name__}.{kwargs.get('kind', '')}".rstrip(".")
        scheduler.register(func, queue, kwargs=kwargs, interval=interval, cron=cron, job_timeout=300, name=name)
    return scheduler
