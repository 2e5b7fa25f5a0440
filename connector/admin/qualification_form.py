"""The Loops page's qualification fields as a form: one row per CRM field, every choice in plain words.

Why: an admin thinks "this field says whether the economic buyer is identified, and the SDR fills it in
before handoff", not in the stored item names. The rows become the stored settings entries, which the one
parser (crm_adapters.qualification.QualificationMapping.from_settings) checks; a problem names its row.
Plain form fields, so the page works without JavaScript.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from crm_adapters.qualification import (
    ITEM_WORDS,
    KIND_WORDS,
    SOURCE_WORDS,
    STAGE_WORDS,
    QualificationMapping,
    QualificationMappingError,
)

MAX_ROWS = 200  # a form claiming more rows is cut here (nobody maps that many fields)


@dataclass(frozen=True)
class Row:
    """One CRM field as the form shows it; `new` marks the empty row that adds a field."""

    field: str = ""
    label: str = ""
    item: str = ""
    kind: str = ""
    source: str = "deal"
    stage: str = "sdr"
    options: tuple[str, ...] = ()
    option_labels: tuple[str, ...] = ()
    new: bool = False

    @property
    def name(self) -> str:
        """How a problem names the row's field: its label, else its API name."""
        return self.label or self.field

    @property
    def shown_options(self) -> tuple[str, ...]:
        return self.option_labels or self.options

    @property
    def options_json(self) -> str:
        """The options and their labels, carried through the form unchanged (nobody edits a CRM's options here)."""
        return json.dumps([list(pair) for pair in zip(self.options, self.shown_options, strict=True)])


def choices() -> dict[str, Mapping[str, str]]:
    """The dropdowns: stored value -> plain words."""
    return {"items": ITEM_WORDS, "stages": STAGE_WORDS, "sources": SOURCE_WORDS, "kinds": KIND_WORDS}


def rows_from_settings(saved: Any) -> list[Row]:
    """The saved (or suggested) mapping as rows; a broken saved value shows as no rows."""
    try:
        mapping = QualificationMapping.from_settings(saved)
    except QualificationMappingError:
        return []
    return [Row(f.field, f.label, f.item, f.kind, f.source, f.stage, f.options, f.option_labels) for f in mapping.fields]


def described_fields(described: Any, mapped: Sequence[Row]) -> list[Row]:
    """The CRM fields from its last describe that the mapping does not hold yet: the add-a-field list."""
    taken = {(r.source, r.field) for r in mapped}
    return [r for (where, _), r in _described(described).items() if where and (r.source, r.field) not in taken]


def rows_from_form(form: Mapping[str, str], described: Any = None) -> list[Row]:
    """The rows as submitted, in order, without the ones marked for removal and the empty new row. A field the
    CRM described gets its label, kind and options from the describe where the row leaves them blank."""
    count = (form.get("q_count") or "0").strip()
    known = _described(described)
    out = []
    for i in range(min(int(count) if count.isascii() and count.isdigit() else 0, MAX_ROWS)):
        def get(key: str, i: int = i) -> str:
            return (form.get(f"q_{key}_{i}") or "").strip()

        if get("remove") or not (get("field") or get("label") or get("item")):
            continue
        options, labels = _options(get("options"), get("options_text"))
        row = Row(get("field"), get("label"), get("item"), get("kind"), get("source") or "deal", get("stage") or "sdr",
                  options, labels, new=get("new") == "1")
        found = known.get((row.source, row.field)) or known.get(("", row.field))
        if found is not None:
            row = replace(row, label=row.label or found.label, kind=row.kind or found.kind,
                          source=found.source if row.new else row.source,
                          options=row.options or found.options, option_labels=row.option_labels or found.option_labels)
        out.append(row)
    return out


def to_settings(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """The rows as the stored mapping; raises QualificationMappingError naming each row with a problem."""
    problems: list[str] = []
    for number, row in enumerate(rows, 1):
        where = f"Row {number}" + (f" ({row.name})" if row.name else "")
        if not row.field:
            problems.append(f"{where}: type the CRM field's API name, or pick a field from the list.")
        if row.item not in ITEM_WORDS:
            problems.append(f"{where}: choose what the field tells.")
        if row.kind not in KIND_WORDS:
            problems.append(f"{where}: choose what kind of field it is (the CRM has not described it).")
        if row.stage not in STAGE_WORDS:
            problems.append(f"{where}: choose who fills it in.")
        if row.source not in SOURCE_WORDS:
            problems.append(f"{where}: choose whether it is on the deal or the converted lead.")
        if row.kind == "multiselect" and not row.options:
            problems.append(f"{where}: list its choices, separated by |.")
    if problems:
        raise QualificationMappingError(problems)
    entries = [{"field": r.field, "label": r.label or r.field, "item": r.item, "kind": r.kind, "source": r.source,
                "stage": r.stage, **({"options": list(r.options), "option_labels": list(r.shown_options)}
                                     if r.kind == "multiselect" else {})} for r in rows]
    return QualificationMapping.from_settings(entries).to_settings()


def _options(carried: str, typed: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Options carried as JSON pairs [value, label] (from the CRM), else typed as 'A | B' (value and label alike)."""
    try:
        pairs = json.loads(carried) if carried else []
    except ValueError:
        pairs = []
    if isinstance(pairs, list) and pairs and all(isinstance(p, list) and len(p) == 2 for p in pairs):
        return tuple(str(v) for v, _ in pairs), tuple(str(label) for _, label in pairs)
    values = tuple(dict.fromkeys(o.strip() for o in typed.split("|") if o.strip()))
    return values, values


def _described(described: Any) -> dict[tuple[str, str], Row]:
    """The kept describe by (source, field), and by ("", field) for a name typed without saying where it is."""
    out: dict[tuple[str, str], Row] = {}
    for d in described if isinstance(described, list) else ():
        if not isinstance(d, Mapping) or not d.get("field"):
            continue
        options = tuple(str(o) for o in d.get("options") or ())
        labels = tuple(str(o) for o in d.get("option_labels") or ()) or options
        row = Row(str(d["field"]), str(d.get("label") or d["field"]), "", str(d.get("kind") or ""),
                  str(d.get("source") or "deal"), "sdr", options, labels if len(labels) == len(options) else options)
        out.setdefault((row.source, row.field), row)
        out.setdefault(("", row.field), row)
    return out
