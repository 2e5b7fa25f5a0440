"""`salesloop demo --serve`: the app plus the sandbox CRM's record pages on 127.0.0.1, for one person.

The sandbox blueprint is registered here only, on top of the production app factory, so a
deployed app never serves it.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import socket
from collections.abc import Callable
from typing import Any

import click
from flask import Flask, redirect, url_for
from werkzeug.serving import make_server

from connector.app import create_app
from connector.sandbox_pages import SandboxSite, bp
from connector.settings import Settings
from connector.store import Store, installation_settings
from connector.store import installations as inst
from crm_adapters.model import UserRole
from crm_adapters.sandbox import SandboxCrm
from jobs.tools.demo import PORT as DEMO_PORT
from jobs.tools.demo import TENANT

logger = logging.getLogger(__name__)
HOST = "127.0.0.1"



def demo_app(settings: Settings, store: Store, crm: SandboxCrm, installation_id: str) -> Flask:
    """The production app with the sandbox CRM's pages mounted at /sandbox/ (and / pointing there)."""
    if settings.secret_key.startswith("dev-only"):
        settings = dataclasses.replace(settings, secret_key=secrets.token_urlsafe(32))  # sessions last while it runs
    app = create_app(settings, store=store)
    app.extensions["salesloop.sandbox"] = SandboxSite(crm, installation_id, user=_admin_name(crm))
    app.register_blueprint(bp)
    app.add_url_rule("/", "sandbox_root", lambda: redirect(url_for("sandbox.deals")))
    return app


def _admin_name(crm: SandboxCrm) -> str:
    """Whom the local person plays: the org's first sales manager (admin and approver in one)."""
    managers = sorted((u for u in crm.read_users() if u.role is UserRole.MANAGER), key=lambda u: u.remote_id)
    return f"{managers[0].name} (sandbox admin)" if managers else "sandbox admin"


def open_demo(installation_id: str, settings: Settings | None = None) -> tuple[Settings, Store, SandboxCrm]:
    """The store and the sandbox CRM a finished `salesloop demo` left behind."""

    settings = settings or Settings.from_env()
    store = Store.connect(settings.store_url)
    with store.session() as s:
        row = inst.get(s, installation_id)
        url, tenant = installation_settings.read(row).sandbox_url, row.tenant_id
    if not url:
        raise LookupError(f"installation {installation_id} is not a sandbox installation; run `salesloop demo` first")
    return settings, store, SandboxCrm.open(url, tenant)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def serve(installation_id: str, *, port: int = 0, echo: Callable[[str], None] = print) -> None:
    """Serve until Ctrl-C; port 0 picks a free one."""
    settings, store, crm = open_demo(installation_id)
    app = demo_app(settings, store, crm, installation_id)
    server = make_server(HOST, port, app, threaded=True)
    echo(f"The sandbox CRM and salesloop are at http://{HOST}:{server.server_port}/  (Ctrl-C to stop)")
    echo(f"  deals by risk  http://{HOST}:{server.server_port}/sandbox/deals")
    echo(f"  your tasks     http://{HOST}:{server.server_port}/sandbox/tasks")
    echo(f"  admin pages    http://{HOST}:{server.server_port}/sandbox/admin")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        echo("stopped")
    finally:
        server.server_close()
        crm.close()


def add_serve_option(demo: click.Command) -> click.Command:
    """`salesloop demo --serve [--port N]`: after the demo run, serve its sandbox CRM's pages (web side only)."""
    demo.params += [
        click.Option(["--serve"], is_flag=True, help="Then serve the sandbox CRM's deals, cards and tasks on 127.0.0.1."),
        click.Option(["--port"], type=int, default=DEMO_PORT, show_default=True, help="Port for --serve (0: any free port)."),
    ]
    run = demo.callback
    assert run is not None

    def callback(serve: bool, port: int, **options: Any) -> None:
        run(**{**options, "serving_port": port if serve else None})
        if serve:
            serve_latest_demo(port=port, echo=lambda line: click.echo(line, err=bool(options.get("as_json"))))

    demo.callback = callback
    return demo


def serve_latest_demo(*, port: int, echo: Callable[[str], None] = print) -> None:
    """Serve the installation the last `salesloop demo` made (tenant demo-org in the sandbox)."""
    settings = Settings.from_env()
    store = Store.connect(settings.store_url)
    with store.session() as s:
        row = inst.find(s, "sandbox", TENANT)
        installation_id = row.id if row is not None else None
    if installation_id is None:
        raise click.ClickException("no sandbox installation: run `salesloop demo` first")
    serve(installation_id, port=port, echo=echo)
