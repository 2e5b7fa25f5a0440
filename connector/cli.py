"""The `salesloop` command line: demo, database, workers, backtests."""

from __future__ import annotations

from pathlib import Path

import click

from connector.cli_errors import FriendlyGroup
from connector.logs import configure_logging
from connector.sandbox_serve import add_serve_option
from connector.settings import Settings
from connector.store import Store
from jobs.lifecycle import _commands as lifecycle_commands
from jobs.rq.commands import cron, status, worker
from jobs.tools.backtest import BacktestError, command
from jobs.tools.demo import demo
from ui_extensions.packaging import package


@click.group(cls=FriendlyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--log-level", default=None, envvar="LOG_LEVEL", help="DEBUG, INFO, WARNING (default) or ERROR; logs are JSON lines on stderr.")
def main(log_level: str | None) -> None:
    """salesloop: self-improving sales loops that live inside your CRM."""
    configure_logging(log_level)


@main.group()
def db() -> None:
    """The store's schema (SQLite by default, PostgreSQL with DATABASE_URL)."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema to the newest version."""
    settings = Settings.from_env()
    store = Store.connect(settings.store_url, upgrade=True)
    click.echo(f"schema up to date at {store.engine.url.render_as_string(hide_password=True)}")


def _add_job_commands() -> None:
    """worker, cron and demo live with the jobs they run."""
    for job_command in (worker, cron, status, add_serve_option(demo), *lifecycle_commands()):
        main.add_command(job_command)


_add_job_commands()


def _add_package_command() -> None:
    """`salesloop package`: the CRM packages rendered for this deployment (ui_extensions/packaging.py)."""
    main.add_command(package)


_add_package_command()


@main.command("backtest")
@click.option("--deals", "deals", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CSV of opportunities, one row per deal (delimiter and encoding detected).")
@click.option("--mapping", "mapping", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="TOML naming the outcome and feature columns (see jobs/tools/backtest_mapping.py).")
@click.option("--loop", "loop", type=click.Choice(["deal_risk", "handoff", "icp", "all"]), default="deal_risk",
              show_default=True, help="Which loop's learning to try.")
@click.option("--split", "split", type=click.Choice(["time", "cv"]), default="time", show_default=True,
              help="time: train on older deals, hold out the newest 20%; cv: repeated stratified 5-fold.")
@click.option("--predictions", "predictions", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write each held-out deal's probability of winning and its reasons to this CSV.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
@click.option("--no-baselines", is_flag=True, help="Skip majority / logistic regression / naive Bayes / boosting.")
def backtest(deals: Path, mapping: Path, loop: str, split: str, predictions: Path | None, as_json: bool,
             no_baselines: bool) -> None:
    """The loops' learning on a CSV of closed deals, checked on held-out deals."""
    try:
        command(deals, mapping, as_json=as_json, baselines=not no_baselines, loop=loop, split=split,
                predictions=predictions)
    except BacktestError as exc:
        raise click.ClickException(str(exc)) from exc


if __name__ == "__main__":
    main()
