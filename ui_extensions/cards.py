"""The one card presenter both CRMs use: stored card sections in, a small view model out.

Pure: plain dicts in (CardData.payload sections written by the loops, pending proposals),
a JSON-ready dict out, capped in size so a HubSpot fetch stays far below its 1 MB limit
and the Salesforce canvas renders fast. Unknown or broken sections are skipped, not fatal:
a card with half its data is better than no card.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from jobs.loops import labels, registry
from jobs.loops.deal_risk.levels import RiskScale

MAX_TEXT = 400
MAX_REASONS = 3
MAX_OBJECTIONS = 4
MAX_RESPONSES = 3
MAX_QUESTIONS = 5
MAX_APPROVALS = 10
MAX_EVIDENCE = 3
_TONE = {"high": "danger", "medium": "warning", "low": "success"}


def card_view(
    payload: Mapping[str, Any] | None,
    *,
    deal_id: str,
    updated_at: str | None = None,
    proposals: Sequence[Mapping[str, Any]] = (),
    viewer_is_manager: bool = False,
    other_approvals: int = 0,
) -> dict[str, Any]:
    """The view model of one deal's card; approvals (this deal's or its owner's) only for managers."""
    payload = payload or {}
    objections = _objections(payload.get("objections"))
    view: dict[str, Any] = {
        "deal_id": deal_id,
        "updated_at": updated_at,
        "risk": _risk(payload.get("risk"), objections),
        "objections": objections,
        "discovery": _discovery(payload.get("discovery")),
        "handoff": _handoff(payload.get("handoff")),
        "can_approve": viewer_is_manager,
        "approvals": [_approval(p) for p in proposals[:MAX_APPROVALS]] if viewer_is_manager else [],
        "other_approvals": _others(other_approvals) if viewer_is_manager else "",
    }
    view["empty"] = not any(view[k] for k in ("risk", "objections", "discovery", "handoff"))
    view["message"] = "salesloop has not scored this deal yet: it appears after the next run." if view["empty"] else ""
    return view


def _others(n: int) -> str:
    """Approvals about other deals are not lost: the card says where they wait."""
    if n <= 0:
        return ""
    verb = "waits" if n == 1 else "wait"
    return f"{labels.count(n, 'other approval')} about other deals or the whole team {verb} in your salesloop tasks."


def _text(value: Any, limit: int = MAX_TEXT) -> str:
    text = "" if value is None else str(value).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def label(identifier: Any) -> str:
    """'economic_buyer' -> 'Economic buyer', 'roi_case' -> 'ROI case': the one vocabulary (jobs.loops.labels)."""
    return labels.word(_text(identifier, 80))


_IDENTIFIER = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)+$")


def _risk(section: Any, objections: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any] | None:
    """Score, level and win chance from the one scale the loop wrote (the level is never re-derived differently)."""
    if not isinstance(section, Mapping) or "score" not in section:
        return None
    try:
        score = max(0, min(100, round(float(section["score"]))))
    except (TypeError, ValueError):
        return None
    level = RiskScale.from_json(section.get("scale")).level(score)
    reasons = [r for r in section.get("reasons") or [] if isinstance(r, Mapping)]
    chance = _text(section.get("chance_text")) or labels.win_chance((100 - score) / 100, None)
    return {
        "score": score,
        "level": level,
        "level_label": labels.level(level),
        "tone": _TONE.get(level, "info"),
        "chance": chance,
        "reasons": [_reason(r) for r in reasons[:MAX_REASONS]],
        "next_move": _next_move(section.get("next_move"), objections),
    }


def _reason(reason: Mapping[str, Any]) -> dict[str, Any]:
    evidence = reason.get("evidence") or []
    if isinstance(evidence, str):
        evidence = [evidence]
    text = _text(reason.get("text") or label(reason.get("code")))
    shown = [_text(e, 200) for e in list(evidence) if _text(e) and _text(e) not in text]  # no line the reason already says
    return {"code": _text(reason.get("code"), 60), "text": text, "evidence": shown[:MAX_EVIDENCE]}


def _next_move(move: Any, objections: Sequence[Mapping[str, Any]] = ()) -> str | None:
    """The move in words; "address the concern" names the response the card's own table ranks first."""
    if isinstance(move, Mapping):
        if move.get("id") == "address_concern":
            agreed = _concern_move(objections)
            if agreed:
                return agreed
        move = move.get("text") or move.get("title") or label(move.get("code") or move.get("move") or "")
    return _text(move) or None


def _concern_move(objections: Sequence[Mapping[str, Any]]) -> str | None:
    """Call about the first objection, leading with the response its table shows first (the one that won most)."""
    for o in objections:
        top = o["responses"][0]["label"] if o.get("responses") else o.get("recommended")
        if top:
            return _text(f"Call to address their {labels.phrase(o['label'])} concern: lead with {labels.phrase(top)}, "
                         "the response that has won most often against it (table below)")
    return None


def _objections(section: Any) -> list[dict[str, Any]]:
    if not isinstance(section, Mapping) or not isinstance(section.get("objections"), Mapping):
        return []
    out = []
    for kind, entry in sorted(section["objections"].items())[:MAX_OBJECTIONS]:
        if not isinstance(entry, Mapping):
            continue
        rows = [r for r in entry.get("best") or [] if isinstance(r, Mapping) and r.get("strategy")]
        out.append({
            "type": _text(kind, 40),
            "label": label(kind),
            "recommended": label(entry["recommended"]) if entry.get("recommended") else None,
            "answered_with": [label(s) for s in (entry.get("answered_with") or [])[:MAX_RESPONSES]],
            "responses": [_response(r) for r in rows[:MAX_RESPONSES]],
        })
    return out


def _response(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"strategy": _text(row.get("strategy"), 60), "label": label(row.get("strategy")),
            "win_rate": _pct(row.get("mean")), "range": f"{_pct(row.get('lo'))}–{_pct(row.get('hi'))}",
            "n": int(row.get("n") or 0), "verdict": _text(row.get("verdict"), 30)}


def _pct(value: Any) -> str:
    try:
        return f"{round(float(value) * 100)}%"
    except (TypeError, ValueError):
        return "?"


def _discovery(section: Any) -> dict[str, Any] | None:
    if not isinstance(section, Mapping):
        return None
    questions = [q for q in section.get("questions") or [] if isinstance(q, Mapping) and q.get("question")]
    if not questions:
        return None
    return {
        "questions": [{"id": _text(q["question"], 60), "text": label(q["question"]),
                       "lift": f"+{_pct(q.get('lift'))}"} for q in questions[:MAX_QUESTIONS]],
        "asked": [label(a) for a in (section.get("asked") or [])[:10]],
    }


def _handoff(section: Any) -> dict[str, Any] | None:
    """The SDR->BDM post-mortem: a headline plus flat key facts (whatever scalars the loop stored)."""
    if not isinstance(section, Mapping) or not section:
        return None
    facts = [{"label": label(k), "value": _fact(v)} for k, v in sorted(section.items())
             if k not in ("summary", "title") and _fact(v)]
    return {"summary": _text(section.get("summary") or section.get("title")), "facts": facts[:8]}


def _fact(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, str) and _IDENTIFIER.match(value):
        return label(value)
    if isinstance(value, int | str):
        return _text(value, 160)
    if isinstance(value, list | tuple) and all(isinstance(v, str | int | float) for v in value):
        return _text(", ".join(label(v) for v in value[:6]), 160)
    return ""


def _approval(proposal: Mapping[str, Any]) -> dict[str, Any]:
    diff = [d for d in proposal.get("diff") or [] if isinstance(d, Mapping) and d.get("field")]  # spot-check lists name no field
    changes = [_text(f"{label(d.get('field'))}: {_OPS.get(str(d.get('op')), 'set')} {_value(d.get('value'))}", 160)
               for d in diff[:5]]
    return {"id": str(proposal.get("id")), "title": _text(proposal.get("title"), 200), "loop": registry.title(str(proposal.get("loop") or "")),
            "created_at": labels.when(proposal.get("created_at")) if proposal.get("created_at") else "", "changes": changes}


_OPS = {"add": "add", "remove": "remove", "set": "set to", "replace": "set to"}


def _value(value: Any) -> str:
    text = str(value if value is not None else "")
    return labels.segment(text) if "=" in text else label(text)
