"""Per-deal handoff read-outs: pain alignment on open deals, a post-mortem on closed ones.

The post-mortem says which SDR-stage signals were present and how each moved the predicted odds,
and what the SDR claimed that the BDM's discovery contradicted (pains, budget, authority, timing).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from crm_adapters.model import Entity
from crm_adapters.writes import AppField
from jobs.loops import labels
from jobs.loops.decision import ActionKind, Decision, Reason
from jobs.loops.handoff.model import contribution, predicted
from jobs.loops.handoff.signals import DealSignals, alignment

LOOP = "handoff"


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


def contradictions(deal: DealSignals) -> list[dict[str, Any]]:
    """What the SDR claimed that discovery turned out not to support, each with the SDR's quote."""
    out = []
    for pain in sorted(deal.unconfirmed_pains):
        denied = pain in deal.denied_pains
        out.append({"code": "pain_denied" if denied else "pain_not_confirmed", "claim": pain,
                    "quote": deal.evidence.get(f"pain:{pain}", ""),
                    "text": f"SDR claimed the pain {labels.phrase(pain)}; " + ("the buyer denied it in discovery" if denied
                                                              else "the BDM's discovery did not confirm it")})
    if deal.budget == "confirmed" and (deal.bdm_budget == "absent" or "no_budget" in deal.bdm_objections):
        out.append({"code": "budget_contradicted", "claim": "budget confirmed", "quote": "",
                    "text": "SDR noted budget as confirmed; in discovery the buyer said there is no budget"})
    if "economic_buyer" in deal.meddic and "authority" in deal.bdm_objections:
        out.append({"code": "authority_contradicted", "claim": "economic buyer identified",
                    "quote": deal.evidence.get("meddic:economic_buyer", ""),
                    "text": "SDR recorded the economic buyer; in discovery the contact said the decision is not theirs"})
    if deal.timeline == "set" and "timing" in deal.bdm_objections:
        out.append({"code": "timeline_contradicted", "claim": "timeline set", "quote": "",
                    "text": "SDR noted a timeline; in discovery the buyer raised a timing objection"})
    return out + field_contradictions(deal)


_SAID = {"budget": "there is no budget", "economic_buyer": "the decision is not theirs", "authority": "the decision "
         "is not theirs", "timeline": "the timing does not work"}


def field_contradictions(deal: DealSignals) -> list[dict[str, Any]]:
    """Qualification fields the SDR set that discovery contradicted: by the BDM's own field for the same
    item, or by what the buyer said in the discovery call (no budget, not their decision, bad timing)."""
    out = [{"code": "field_contradicted", "claim": f"{sdr.label} = {sdr.level}", "quote": "",
            "text": f"SDR set {sdr.label} to {sdr.level}; after discovery {found.label} is {found.level}"}
           for sdr, found in deal.field_contradictions()]
    said = {"budget": deal.bdm_budget == "absent" or "no_budget" in deal.bdm_objections,
            "economic_buyer": "authority" in deal.bdm_objections, "authority": "authority" in deal.bdm_objections,
            "timeline": "timing" in deal.bdm_objections}
    checked = {c["claim"] for c in out}
    for a in deal.qualification:
        claim = f"{a.label} = {a.level}"
        if a.stage == "sdr" and a.claimed and said.get(a.item) and claim not in checked:
            out.append({"code": "field_contradicted", "claim": claim, "quote": "",
                        "text": f"SDR set {a.label} to {a.level}; in discovery the buyer said {_SAID[a.item]}"})
    return out


def signal_label(name: str) -> str:
    """A model column as people read it: 'Budget allocated = Yes', pairs joined by 'and'."""
    return " and ".join(part.replace("=", " = ", 1) for part in name.split(" & "))


def postmortem(deal: DealSignals, summary: Mapping[str, Any]) -> dict[str, Any]:
    """The closed deal's handoff story, JSON-ready for the card and the note."""
    moves = contribution(summary, deal)
    aligned = alignment(deal)
    p = predicted(summary, deal)
    return {
        "outcome": deal.status.value,
        "predicted_win": round(p, 3) if p is not None else None,
        "signals": [{"signal": signal_label(name), "log_odds": round(effect, 3), "odds_x": round(2.718281828 ** effect, 2),
                     "quote": deal.evidence.get(name, "")} for name, effect in moves[:8]],
        "pain_alignment": aligned[0] if aligned else None,
        "matched_pains": aligned[1] if aligned else [],
        "claimed_not_found": aligned[2] if aligned else [],
        "found_not_claimed": aligned[3] if aligned else [],
        "contradictions": contradictions(deal),
    }


NOTE_SIGNALS = 5  # signals the note lists (the card shows up to 8)


def note_figures(pm: Mapping[str, Any]) -> tuple[str, ...]:
    """Every model figure and signal name the note quotes, formatted as it quotes them: the gate's evidence."""
    out = []
    if pm["predicted_win"] is not None:
        out.append(f"predicted win chance {_pct(pm['predicted_win'])}")
    out += [f"{s['signal']} odds ratio {s['odds_x']}" for s in pm["signals"][:NOTE_SIGNALS]]
    if pm["pain_alignment"] is not None:
        out.append(f"pain alignment {pm['pain_alignment']:.2f}")
    return tuple(out)


def _pct(p: float) -> str:
    return f"{100 * p:.0f}%"


def note_body(deal: DealSignals, pm: Mapping[str, Any]) -> str:
    lines = [f"Handoff post-mortem ({pm['outcome']})."]
    if pm["predicted_win"] is not None:
        lines.append(f"Predicted win chance from SDR-stage signals: {_pct(pm['predicted_win'])}.")
    for s in pm["signals"][:NOTE_SIGNALS]:
        direction = "raised" if s["log_odds"] > 0 else "lowered"
        lines.append(f"- {labels.signal(s['signal'])} {direction} the odds (odds ratio {s['odds_x']})")
    if pm["pain_alignment"] is not None:
        lines.append(f"Pain alignment SDR vs BDM: {pm['pain_alignment']:.2f} "
                     f"(matched {', '.join(labels.phrase(p) for p in pm['matched_pains']) or 'none'}).")
    for c in pm["contradictions"]:
        quote = f' ("{c["quote"][:160]}")' if c["quote"] else ""
        lines.append(f"- {c['text']}{quote}")
    return "\n".join(lines)


def alignment_text(matched: Sequence[str], missing: Sequence[str], extra: Sequence[str]) -> str:
    """The pains behind an alignment score, in words: what both heard, what only the SDR or only the BDM did."""
    def pains(ids: Sequence[str]) -> str:
        return ", ".join(labels.phrase(p) for p in ids) or "none"
    return (f"SDR and BDM both heard: {pains(matched)}; the SDR's, not found in discovery: {pains(missing)}; "
            f"found in discovery only: {pains(extra)}")


def deal_decisions(deal: DealSignals, summary: Mapping[str, Any], version: str, *,
                   closed_recently: bool) -> list[Decision]:
    """Alignment field + card for an open deal; post-mortem card + note for a recently closed one."""
    out: list[Decision] = []
    aligned = alignment(deal)
    if aligned is not None:
        score, matched, missing, extra = aligned
        out.append(Decision(
            loop=LOOP, kind=ActionKind.UPDATE_FIELD, target=Entity.DEAL, target_id=deal.deal_id,
            key=f"{LOOP}:alignment:{deal.deal_id}:{score}", payload={AppField.PAIN_ALIGNMENT.value: score},
            reasons=(Reason("pain_alignment", alignment_text(matched, missing, extra), score),),
            model_version=version))
    if deal.closed and closed_recently:
        pm = postmortem(deal, summary)
        reasons = tuple(Reason(c["code"], c["text"], -1.0, (c["quote"],) if c["quote"] else ())
                        for c in pm["contradictions"])
        card = {"section": "handoff", "kind": "postmortem", **pm}
        out.append(Decision(loop=LOOP, kind=ActionKind.UPDATE_CARD, target=Entity.DEAL, target_id=deal.deal_id,
                            key=f"{LOOP}:card:{deal.deal_id}:{_digest(card)}", payload=card, reasons=reasons,
                            model_version=version))
        out.append(Decision(loop=LOOP, kind=ActionKind.CREATE_NOTE, target=Entity.DEAL, target_id=deal.deal_id,
                            key=f"{LOOP}:postmortem:{deal.deal_id}",
                            payload={"subject": "salesloop: handoff post-mortem", "body": note_body(deal, pm),
                                     "owner_id": deal.owner_id},
                            reasons=(*reasons, Reason("postmortem_figures", "model figures the post-mortem quotes",
                                                      0.0, note_figures(pm))), model_version=version))
    elif not deal.closed and aligned is not None:
        card = {"section": "handoff", "kind": "alignment", "pain_alignment": aligned[0], "matched_pains": aligned[1],
                "claimed_not_found": aligned[2], "found_not_claimed": aligned[3],
                "contradictions": contradictions(deal)}
        out.append(Decision(loop=LOOP, kind=ActionKind.UPDATE_CARD, target=Entity.DEAL, target_id=deal.deal_id,
                            key=f"{LOOP}:card:{deal.deal_id}:{_digest(card)}", payload=card, model_version=version))
    return out
