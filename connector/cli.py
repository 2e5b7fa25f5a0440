"""The `salesloop` command line: demo, database, workers, backtests."""

from __future__ import annotations

import click

from connector.logs import configure_logging


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--log-level", default=None, help="DEBUG, INFO, WARNING (default) or ERROR; logs are JSON lines on stderr.")
def main(log_level: str | None) -> None:
    """salesloop: self-improving sales loops that live inside your CRM."""
    configure_logging(log_level)


@main.group()
def db() -> None:
    """The store's schema (SQLite by default, PostgreSQL with DATABASE_URL)."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema to the newest version."""
    from connector.settings import Settings
    from connector.store import Store

    settings = Settings.from_env()
    store = Store.connect(settings.database_url, upgrade=True)
    click.echo(f"schema up to date at {store.engine.url.render_as_string(hide_password=True)}")


def _add_job_commands() -> None:
    """worker, cron and demo live with the jobs they run."""
    from jobs.commands import cron, worker
    from jobs.demo import demo

    for command in (worker, cron, demo):
        main.add_command(command)


_add_job_commands()


if __name__ == "__main__":
    main()
