"""Qualification fields: which CRM fields hold the SDR's MEDDIC / BANT / SPICED answers, per tenant.

Why: real orgs record qualification as structured data (picklists, checkboxes, scores on the deal or
the converted lead), not only in notes. An admin confirms a mapping (suggested from field names and
picklist values) stored in installation.settings["qualification"]; adapters read the mapped fields
into `Deal.qualification` as {CRM label: level}, where an empty field is the level "unknown". A
multi-select field ("Competitors: Acme;Globex") is one yes/no item per option ("Competitors: Acme" = Yes),
since a deal can hold several options at once and one level per combination would split the deals thinly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from crm_adapters.model import QualificationAnswer
from crm_adapters.port import FieldDescription

SETTINGS_KEY = "qualification"
UNKNOWN = "unknown"
KINDS = ("picklist", "checkbox", "number", "multiselect")
SOURCES = ("deal", "lead")  # lead: a field of the converted Lead (Salesforce)
STAGES = ("sdr", "discovery")  # who records the field: the SDR at hand-over, or the BDM after discovery
# Qualification items (MEDDICC, BANT, SPICED) and the words that name them in field labels or picklist values.
ITEMS: dict[str, tuple[str, ...]] = {
    "budget": ("budget", "funding", "funded"),
    "authority": ("authority", "decision maker", "signatory"),
    "need": ("need", "requirement"),
    "timeline": ("timeline", "timing", "timeframe", "time frame", "go live", "go-live"),
    "metrics": ("metric", "kpi", "roi", "business case"),
    "economic_buyer": ("economic buyer", "budget holder"),
    "decision_criteria": ("decision criteria", "evaluation criteria", "criteria"),
    "decision_process": ("decision process", "buying process", "procurement", "approval process"),
    "identify_pain": ("pain", "problem", "challenge"),
    "champion": ("champion", "sponsor", "advocate"),
    "competition": ("competitor", "competition", "incumbent"),
    "situation": ("situation", "current state"),
    "impact": ("impact", "cost of inaction"),
    "critical_event": ("critical event", "compelling event", "deadline"),
    "positive_statement": ("positive statement", "buying signal"),
    "upsell": ("up-sell", "upsell", "upgrade", "expansion", "cross-sell"),
    "score": ("meddic score", "bant score", "qualification score", "lead score"),
}
# The same items, stages, places and kinds as an admin reads them (the Loops page's dropdowns).
ITEM_WORDS: dict[str, str] = {
    "budget": "Budget confirmed", "authority": "Decision maker identified", "need": "Need confirmed",
    "timeline": "Timeline known", "metrics": "Business case agreed",
    "economic_buyer": "Economic buyer identified", "decision_criteria": "Decision criteria known",
    "decision_process": "Decision process known", "identify_pain": "Pain named", "champion": "Champion identified",
    "competition": "Competitors known", "situation": "Situation described",
    "impact": "Cost of doing nothing stated", "critical_event": "Deadline known",
    "positive_statement": "Buying signal heard", "upsell": "Interest in expanding",
    "score": "Qualification score", "other": "Something else",
}
STAGE_WORDS = {"sdr": "by the SDR before handoff", "discovery": "by the BDM in discovery"}
SOURCE_WORDS = {"deal": "on the deal", "lead": "on the converted lead"}
KIND_WORDS = {"picklist": "one choice from a list", "checkbox": "a yes/no checkbox", "number": "a number",
              "multiselect": "several choices"}  # each choice of a several-choice field is read as its own yes or no
_ORDER = sorted(((w, item) for item, words in ITEMS.items() for w in words), key=lambda p: -len(p[0]))
YES = ("yes", "true", "1", "y", "confirmed", "identified", "known", "allocated", "high", "approved")
NO = ("no", "false", "0", "n", "none", "not identified", "not known", "low")
PICKLIST_TYPES = ("enumeration", "picklist", "select", "radio")
MULTISELECT_TYPES = ("multiselect", "multipicklist")
CHECKBOX_TYPES = ("bool", "boolean", "booleancheckbox", "checkbox")
NUMBER_TYPES = ("number", "double", "int", "integer", "percent", "currency")


class QualificationMappingError(ValueError):
    """A mapping the admin saved that cannot be used; every problem is listed at once."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("qualification fields:\n  - " + "\n  - ".join(problems))
        self.problems = tuple(problems)


@dataclass(frozen=True, slots=True)
class QualificationField:
    """One CRM field (API name) as a qualification item, shown by its CRM label."""

    field: str
    label: str
    item: str
    kind: str = "picklist"
    source: str = "deal"
    stage: str = "sdr"
    options: tuple[str, ...] = ()  # multiselect: every option, each read as its own yes/no item
    option_labels: tuple[str, ...] = ()  # the options as the CRM shows them (same order); empty: as stored

    def shown(self, option: str) -> str:
        """An option as the CRM shows it ("Acme Corp" for the stored "acme_corp")."""
        return dict(zip(self.options, self.option_labels, strict=False)).get(option, option)

    def answers(self, value: Any) -> tuple[QualificationAnswer, ...]:
        """The field's answer; a multi-select field gives one yes/no answer per option."""
        if self.kind == "multiselect":
            chosen = None if self.level(value) == UNKNOWN else {v.strip() for v in str(value).split(";")}
            return tuple(QualificationAnswer(label=f"{self.label}: {self.shown(o)}", item=self.item, stage=self.stage,
                                             level=UNKNOWN if chosen is None else "Yes" if o in chosen else "No",
                                             claimed=chosen is not None and o in chosen) for o in self.options)
        level = self.level(value)
        return (QualificationAnswer(label=self.label, level=level, item=self.item, stage=self.stage,
                                    claimed=level != UNKNOWN and self.claims(level)),)

    def level(self, value: Any) -> str:
        """The raw CRM value as a level: checkboxes Yes/No, numbers as written, empty 'unknown'."""
        if value is None or (isinstance(value, str) and not value.strip()):
            return UNKNOWN
        if self.kind == "checkbox":
            return "Yes" if str(value).strip().lower() in ("true", "1", "yes", "y") else "No"
        if self.kind == "number":
            try:
                return f"{float(str(value).replace(',', '')):g}"
            except ValueError:
                return UNKNOWN
        return str(value).strip()

    def claims(self, level: str) -> bool:
        """Did the SDR record a positive answer (the claim discovery can contradict)?"""
        low = level.strip().lower()
        if self.kind == "number":
            try:
                return float(low) > 0
            except ValueError:
                return False
        return low in YES or (self.item in ITEMS and any(w in low for w in ITEMS[self.item]) and not _negated(low))


def _negated(text: str) -> bool:
    return bool(re.search(r"\b(no|not|none|without|missing)\b", text))


@dataclass(frozen=True, slots=True)
class QualificationMapping:
    """The tenant's confirmed qualification fields."""

    fields: tuple[QualificationField, ...] = ()

    @classmethod
    def from_settings(cls, raw: Any) -> QualificationMapping:
        """installation.settings["qualification"] (a list of {field, label, item, kind, source}); raises with every problem."""
        if raw in (None, [], {}):
            return cls()
        if not isinstance(raw, list):
            raise QualificationMappingError(["must be a list of fields, each {field, label, item, kind, source}"])
        problems: list[str] = []
        fields = [f for i, spec in enumerate(raw) if (f := _parse(i + 1, spec, problems)) is not None]
        fields_seen: set[tuple[str, str]] = set()
        labels_seen: set[str] = set()
        for f in fields:
            if (f.source, f.field) in fields_seen:
                problems.append(f"the CRM field {f.field} {SOURCE_WORDS[f.source]} is mapped twice")
            if f.label in labels_seen:
                problems.append(f"two fields are shown as {f.label!r}: give each its own label")
            fields_seen.add((f.source, f.field))
            labels_seen.add(f.label)
        if problems:
            raise QualificationMappingError(problems)
        return cls(tuple(fields))

    def to_settings(self) -> list[dict[str, Any]]:
        return [{"field": f.field, "label": f.label, "item": f.item, "kind": f.kind, "source": f.source,
                 "stage": f.stage, **({"options": list(f.options)} if f.options else {}),
                 **({"option_labels": list(f.option_labels)} if f.option_labels else {})} for f in self.fields]

    def names(self, source: str = "deal") -> list[str]:
        """API names to read from the deal (or the converted lead)."""
        return [f.field for f in self.fields if f.source == source]

    def values(self, deal: Mapping[str, Any], lead: Mapping[str, Any] | None = None) -> tuple[QualificationAnswer, ...]:
        """Every mapped field's answer; a field the record does not carry is 'unknown'."""
        return tuple(a for f in self.fields
                     for a in f.answers((lead or {}).get(f.field) if f.source == "lead" else deal.get(f.field)))

    def by_label(self) -> dict[str, QualificationField]:
        return {f.label: f for f in self.fields}


def _parse(number: int, spec: Any, problems: list[str]) -> QualificationField | None:
    where = f"field #{number}"
    if not isinstance(spec, Mapping):
        problems.append(f"{where} must be a table with field, label, item, kind")
        return None
    unknown = sorted(set(spec) - {"field", "label", "item", "kind", "source", "stage", "options", "option_labels"})
    before = len(problems)
    problems += [f"{where} has unknown key {k!r}" for k in unknown]
    name, label = str(spec.get("field") or "").strip(), str(spec.get("label") or spec.get("field") or "").strip()
    item, kind, source, stage = (str(spec.get(k, d)).strip() for k, d in (
        ("item", ""), ("kind", "picklist"), ("source", "deal"), ("stage", "sdr")))
    if not name:
        problems.append(f"{where} needs the CRM field's API name (field)")
    if item not in ITEMS and item != "other":
        problems.append(f"{where} ({name or '?'}): item {item!r} is not one of {', '.join([*ITEMS, 'other'])}")
    if kind not in KINDS:
        problems.append(f"{where} ({name or '?'}): kind {kind!r} is not one of {', '.join(KINDS)}")
    if source not in SOURCES:
        problems.append(f"{where} ({name or '?'}): source {source!r} is not one of {', '.join(SOURCES)}")
    if stage not in STAGES:
        problems.append(f"{where} ({name or '?'}): stage {stage!r} is not one of {', '.join(STAGES)}")
    raw_options = spec.get("options") or []
    options = tuple(dict.fromkeys(str(o).strip() for o in raw_options if str(o).strip())) \
        if isinstance(raw_options, list | tuple) else ()
    if kind == "multiselect" and not options:
        problems.append(f"{where} ({name or '?'}): a multiselect field needs its options (each becomes a yes/no item)")
    if kind != "multiselect" and raw_options:
        problems.append(f"{where} ({name or '?'}): options are only for a multiselect field")
    raw_labels = spec.get("option_labels") or []
    option_labels = tuple(str(o).strip() for o in raw_labels) if isinstance(raw_labels, list | tuple) else ()
    if raw_labels and len(option_labels) != len(options):
        problems.append(f"{where} ({name or '?'}): option_labels must name each option once, in the same order")
    return None if len(problems) > before else QualificationField(name, label, item, kind, source, stage, options,
                                                                   option_labels if option_labels != options else ())


def suggest(described: Sequence[FieldDescription]) -> QualificationMapping:
    """A mapping to confirm, from the CRM's field describes (adapter.describe_deal_fields()): words of the
    MEDDIC / BANT / SPICED vocabulary in the label or name, or in the picklist values. Our own fields
    (salesloop_*, *Salesloop*) are never suggested."""
    out = []
    for d in described:
        kind = _kind(d.type.lower())
        if kind is None or "salesloop" in d.name.lower():
            continue
        label = d.label or d.name
        options = " ".join(d.options).lower()
        item = _item(f"{label} {d.name.replace('_', ' ')}".lower()) or (
            _item(options) if kind in ("picklist", "multiselect") else None)
        if item is not None:
            stage = "discovery" if re.search(r"\b(discovery|verified|ae|bdm)\b", label.lower()) else "sdr"
            multi = kind == "multiselect"
            out.append(QualificationField(d.name, label, item, kind, d.source, stage, tuple(d.options) if multi else (),
                                          tuple(d.option_labels) if multi and d.option_labels != d.options else ()))
    return _unique_labels(out)


def describes_to_settings(described: Sequence[FieldDescription]) -> list[dict[str, Any]]:
    """The described fields a mapping can use (picklist, checkbox, number, multi-select; never our own), kept so
    the admin can add any of them to the mapping by its label without asking the CRM again."""
    return [{"field": d.name, "label": d.label or d.name, "kind": kind, "source": d.source, "options": list(d.options),
             "option_labels": list(d.option_labels or d.options)}
            for d in described if (kind := _kind(d.type.lower())) is not None and "salesloop" not in d.name.lower()]


def _unique_labels(fields: Sequence[QualificationField]) -> QualificationMapping:
    """A deal field and a lead field with the same label: the lead's gets ' (lead)', so the mapping validates."""
    seen: set[str] = set()
    out = []
    for f in fields:
        label = f.label if f.label not in seen else f"{f.label} ({f.source})"
        seen.add(label)
        out.append(QualificationField(f.field, label, f.item, f.kind, f.source, f.stage, f.options, f.option_labels))
    return QualificationMapping(tuple(out))


def _kind(crm_type: str) -> str | None:
    for kind, names in (("checkbox", CHECKBOX_TYPES), ("picklist", PICKLIST_TYPES), ("number", NUMBER_TYPES),
                        ("multiselect", MULTISELECT_TYPES)):
        if crm_type in names:
            return kind
    return None


def _item(text: str) -> str | None:
    for word, item in _ORDER:
        if re.search(rf"(?<![a-z]){re.escape(word)}s?(?![a-z])", text):
            return item
    return None
