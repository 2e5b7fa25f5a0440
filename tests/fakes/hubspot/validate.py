"""Write validation as HubSpot does it: unknown properties and invalid values refuse the request
(a batch as a whole), unique-value properties refuse a second holder with 409.

Sources: research §4.9 (error body `{status, message, correlationId, category, errors[]}`, 409 for
conflicts). A batch fails as a whole on one bad input, not per input with 207: HubSpot/hubspot-api-python#51
(a batch create with one existing contact answers one error, category CONFLICT, "... already exists.
Existing ID: ..."), and the same for invalid values (issue 13's finding, checked against HubSpot's
"Property values were not valid" 400 VALIDATION_ERROR body). Reading or upserting by `idProperty` needs
a unique-value property (segmentio/action-destinations#3957: "Unable to perform update/upsert by
non-unique ... property"); unique values: research §4.4 `hasUniqueValue`.
"""

from __future__ import annotations

import json
from typing import Any

from tests.fakes.hubspot.portal import FakeError, Obj, Portal


def property_errors(portal: Portal, otype: str, props: dict[str, Any]) -> list[dict[str, Any]]:
    """HubSpot's per-property validation results for one input (empty: valid)."""
    out = []
    defined = portal.defined(otype)
    for name, value in props.items():
        if name not in defined:
            out.append({"isValid": False, "message": f'Property "{name}" does not exist', "error":
                        "PROPERTY_DOESNT_EXIST", "name": name, "localizedErrorMessage": f'Property "{name}" does not exist'})
            continue
        why = portal.check_value(otype, name, value)
        if why:
            out.append({"isValid": False, "message": why, "error": "INVALID_OPTION" if "allowed options" in why
                        else "INVALID_OWNER_ID" if "owner" in why
                        else "INVALID_INTEGER" if "number" in why else "INVALID_VALUE", "name": name})
    return out


def refuse(errors: list[dict[str, Any]], index: int | None = None) -> FakeError:
    """The 400 that fails a whole request (a batch included) for invalid property values."""
    where = {} if index is None else {"context": {"inputIndex": [str(index)]}}
    return FakeError(400, "VALIDATION_ERROR", f"Property values were not valid: {json.dumps(errors)}",
                     errors=[{"message": e["message"], "code": e["error"], **where} for e in errors])


def check_inputs(portal: Portal, otype: str, inputs: list[dict[str, Any]]) -> None:
    """Raise the whole-batch 400 when any input names an unknown property or holds an invalid value."""
    for i, item in enumerate(inputs):
        errors = property_errors(portal, otype, item.get("properties") or {})
        if errors:
            raise refuse(errors, i)


def conflicts(portal: Portal, otype: str, inputs: list[dict[str, Any]], *, updating: list[int | None]) -> None:
    """409 when an input would give a unique property a value another live object (or input) holds."""
    unique = portal.unique_properties(otype)
    taken: dict[tuple[str, str], int | None] = {}
    for item, own in zip(inputs, updating, strict=True):
        for name in unique & set(item.get("properties") or {}):
            value = str(item["properties"][name])
            if value == "":
                continue
            holder: Obj | None = portal.holder(otype, name, value)
            if (holder is not None and holder.id != own) or (name, value) in taken:
                existing = str(holder.id) if holder is not None else "another input of this batch"
                raise FakeError(409, "CONFLICT", f"A {otype[:-1]} with {name} {value!r} already exists. "
                                f"Existing ID: {existing}", context={"id": [existing], "propertyName": [name]})
            taken[(name, value)] = own


def id_property(portal: Portal, otype: str, name: str | None) -> None:
    """Reading or upserting by `idProperty` needs a unique property."""
    if name and name not in portal.unique_properties(otype):
        raise FakeError(400, "VALIDATION_ERROR",
                        f"Unable to perform update/upsert by non-unique {otype} property {name} in portal ID "
                        f"{portal.hub_id}")
