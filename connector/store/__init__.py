"""The store: installations, encrypted tokens, cursors, the common-model snapshot, loop state.

Imports only the common model (crm_adapters.model and friends), never an adapter.
"""

from connector.store.db import SchemaError, Store

__all__ = ["SchemaError", "Store"]
