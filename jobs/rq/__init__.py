"""Delivery on RQ: the task entry points, queues, the cron schedule, tenant locks, the worker commands."""
