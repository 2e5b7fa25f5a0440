"""RQ's worker, scheduler and cron, kept alive through Redis restarts.

Out of the box a Redis restart makes rq's worker quit ("found an unhandled exception,
quitting"), kills the scheduler child that moves retries back to their queue, and ends the
cron process. A deployed app must ride that out: each long-running loop here waits for Redis
to answer again (backoff up to 30 s, one log line per attempt) and carries on.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue, Worker
from rq.exceptions import StopRequested
from rq.scheduler import RQScheduler

logger = logging.getLogger(__name__)

REDIS_DOWN = (RedisConnectionError, RedisTimeoutError)
MAX_WAIT_S = 30.0


def wait_for_redis(conn: Redis, *, first_wait: float = 1.0, sleep: Callable[[float], None] = time.sleep) -> int:
    """Block until Redis answers PING; returns how many attempts failed."""
    wait, failures = first_wait, 0
    while True:
        try:
            conn.ping()
            return failures
        except REDIS_DOWN as exc:
            failures += 1
            logger.warning("Redis is unreachable (%s); trying again in %.0f s", type(exc).__name__, wait)
            sleep(wait)
            wait = min(wait * 2, MAX_WAIT_S)


class SteadyScheduler(RQScheduler):
    """rq's scheduler child (it moves due retries back to their queues), surviving Redis restarts."""

    def work(self) -> None:
        while True:
            try:
                super().work()
                return
            except REDIS_DOWN:
                wait_for_redis(self.connection)
                self._acquired_locks = set()  # a restarted Redis lost them: take them again
                self.acquire_locks()


class SteadyWorker(Worker):
    """rq's Worker whose scheduler child is a SteadyScheduler."""

    def _start_scheduler(self, burst: bool = False, logging_level: Any = None, date_format: Any = None,
                         log_format: Any = None) -> None:
        self.scheduler = SteadyScheduler(self.queues, connection=self.connection, serializer=self.serializer,
                                         logging_level=logging_level if logging_level is not None else self.log.level)
        self.scheduler.acquire_locks()
        if not self.scheduler.acquired_locks:
            return
        if burst:
            try:
                self.scheduler.register_birth()
                self.scheduler.enqueue_scheduled_jobs()
            finally:
                self.scheduler.release_locks()
                self.scheduler.register_death()
        else:
            self.scheduler.start()


def run_worker(conn: Redis, queue_names: tuple[str, ...], *, name: str | None, burst: bool, maintenance_s: int = 60) -> None:
    """Work until asked to stop (or, with burst, until the queues are empty), restarting after Redis comes back."""
    restarts = 0
    while True:
        label = name if name is None or restarts == 0 else f"{name}.r{restarts}"  # the old name may survive in Redis
        worker = SteadyWorker([Queue(q, connection=conn) for q in queue_names], connection=conn, name=label,
                              maintenance_interval=maintenance_s)
        with contextlib.suppress(*REDIS_DOWN):  # raised by the teardown after the loop gave up
            worker.work(burst=burst, with_scheduler=True, logging_level="WARNING")
        if burst or worker._stop_requested or worker._shutdown_requested_date is not None:
            return
        restarts += 1
        logger.warning("the worker lost Redis; reconnecting (restart %d)", restarts)
        _wait_interruptibly(conn)


def run_cron(conn: Redis, build: Callable[[Redis], Any]) -> None:
    """Run the cron scheduler until asked to stop, rebuilding it after Redis comes back."""
    while True:
        scheduler = build(conn)
        try:
            scheduler.start()
            return
        except StopRequested:
            return
        except REDIS_DOWN:
            logger.warning("the cron scheduler lost Redis; reconnecting")
            _wait_interruptibly(conn)


def _wait_interruptibly(conn: Redis) -> None:
    """Wait for Redis; SIGTERM or Ctrl-C meanwhile ends the process (rq's own handlers would need Redis)."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_now)
    wait_for_redis(conn)


def _exit_now(_signum: int, _frame: Any) -> None:
    sys.exit(0)
