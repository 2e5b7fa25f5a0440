"""The web side's one error shape: {"code", "message"}; views hold no try/except."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from crm_adapters.errors import CrmAuthError, CrmError

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """An error a view raises to answer with a status and a clear message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):  # type: ignore[no-untyped-def]
        return jsonify(code=exc.code, message=exc.message), exc.status

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):  # type: ignore[no-untyped-def]
        return jsonify(code=(exc.name or "error").lower().replace(" ", "_"), message=exc.description), exc.code

    @app.errorhandler(CrmAuthError)
    def _crm_auth(exc: CrmAuthError):  # type: ignore[no-untyped-def]
        return jsonify(code="crm_reauth_required", message=str(exc)), 409

    @app.errorhandler(CrmError)
    def _crm_error(exc: CrmError):  # type: ignore[no-untyped-def]
        logger.warning("crm error in request: %s", type(exc).__name__)
        return jsonify(code="crm_error", message=str(exc)[:500]), 502
