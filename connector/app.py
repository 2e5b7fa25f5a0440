"""The app factory: `connector.app:create_app`."""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, jsonify
from sqlalchemy import text

from connector import web
from connector.admin.views import admin
from connector.errors import register_error_handlers
from connector.logs import configure_logging
from connector.oauth import bp as oauth_bp
from connector.settings import Settings
from connector.store import Store
from connector.store.crypto import TokenCipher
from connector.webhooks import bp as webhooks_bp
from jobs.loops import labels
from jobs.loops.registry import title as loop_title
from ui_extensions.hubspot_card import bp as hubspot_card_bp
from ui_extensions.salesforce_card import bp as salesforce_card_bp

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, *, store: Store | None = None) -> Flask:
    """Build the web app; tests pass settings (and a store) in, production reads the environment."""
    settings = settings or Settings.from_env()
    configure_logging(settings.log_level)
    app = Flask(__name__, template_folder="templates", static_folder="static")
    app.config.update(SECRET_KEY=settings.secret_key, TESTING=settings.testing)
    # Lax: the OAuth callback is a top-level GET from the CRM and must carry the state nonce's session.
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      SESSION_COOKIE_SECURE=settings.public_base_url.startswith("https://"))
    app.extensions["salesloop.settings"] = settings
    app.extensions["salesloop.store"] = store or Store.connect(settings.store_url)
    app.extensions["salesloop.cipher"] = TokenCipher.from_key_text(settings.token_encryption_key)
    register_error_handlers(app)
    app.before_request(web.refuse_nul_characters)

    @app.get("/health")
    def health():  # type: ignore[no-untyped-def]
        with app.extensions["salesloop.store"].session() as session:
            session.execute(text("SELECT 1"))
        return jsonify(status="ok")

    app.add_template_filter(loop_title, "loop_title")  # a loop's name as people read it, on every page
    app.add_template_filter(labels.word, "words")  # a stored value (`needs_approval`, `stage_change`) in words
    for blueprint in _blueprints():
        app.register_blueprint(blueprint)
    return app


def _blueprints() -> list[Blueprint]:
    """Every blueprint of the web side; each CRM and the admin add theirs here."""
    return [oauth_bp, webhooks_bp, hubspot_card_bp, salesforce_card_bp, admin]
