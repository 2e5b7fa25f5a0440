"""Recovery moves for at-risk deals, ranked by how often similar deals were won after the move.

A move "was taken" on a closed deal when, between its as-of moment and its close, the history
shows it: an activity tagged with the move (custom {"move": id}) or the move's pattern below.
Rates are shrunk toward the at-risk baseline (K pseudo-deals), so a move seen twice cannot win.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from crm_adapters.model import Activity, ActivityType, ContactRole, Deal, DealStatus, Direction
from crm_adapters.snapshot import Snapshot
from jobs.loops import labels
from jobs.loops.deal_risk.signs import Sign

K = 10.0  # shrinkage: pseudo-deals at the baseline recovery rate


@dataclass(frozen=True)
class Move:
    id: str
    text: str
    addresses: tuple[str, ...]
    seen: Callable[[Snapshot, Deal, Sequence[Activity], Sequence[Activity]], bool]  # (before, after as-of)


def _tagged(after: Sequence[Activity], move_id: str) -> bool:
    return any(a.custom.get("move") == move_id for a in after)


def _says(after: Sequence[Activity], *words: str) -> bool:
    return any(w in a.text.lower() for a in after for w in words)


def _buyer_engaged(s: Snapshot, d: Deal, before: Sequence[Activity], after: Sequence[Activity]) -> bool:
    buyers = {r.contact_id for r in s.roles_by_deal.get(d.remote_id, [])
              if r.role in (ContactRole.ECONOMIC_BUYER, ContactRole.DECISION_MAKER)}
    earlier = {c for a in before for c in a.contact_ids}
    return any((set(a.contact_ids) & buyers) - earlier for a in after) or _says(after, "economic buyer", "budget owner")


def _champion_back(s: Snapshot, d: Deal, before: Sequence[Activity], after: Sequence[Activity]) -> bool:
    champions = set(s.contacts_in_role(d.remote_id, ContactRole.CHAMPION))
    reached = [a for a in after if champions & set(a.contact_ids)]
    return any(a.direction is Direction.OUTBOUND for a in reached) and any(a.direction is Direction.INBOUND for a in reached)


def _meeting_held(s: Snapshot, d: Deal, before: Sequence[Activity], after: Sequence[Activity]) -> bool:
    return any(a.type is ActivityType.MEETING and (a.outcome or "completed") == "completed" for a in after)


def _proposal_walked(s: Snapshot, d: Deal, before: Sequence[Activity], after: Sequence[Activity]) -> bool:
    return any(a.type in (ActivityType.MEETING, ActivityType.CALL) and "proposal" in a.text.lower() for a in after)


def _concern_call(s: Snapshot, d: Deal, before: Sequence[Activity], after: Sequence[Activity]) -> bool:
    return _says(after, "reference customer", "case study", "address your concern", "concerns")


MOVES: tuple[Move, ...] = (
    Move("multi_thread", "Multi-thread: ask the champion to bring in the economic buyer this week",
         ("single_threaded", "champion_quiet"), lambda s, d, b, a: _tagged(a, "multi_thread") or _buyer_engaged(s, d, b, a)),
    Move("reengage_champion", "Re-engage the champion with a short personal call and one new piece of value",
         ("champion_quiet", "no_recent_activity"), lambda s, d, b, a: _tagged(a, "reengage_champion") or _champion_back(s, d, b, a)),
    Move("mutual_action_plan", "Send a mutual action plan with dated steps to signature",
         ("stalled_in_stage", "meeting_slipped", "close_date_pushed"),
         lambda s, d, b, a: _tagged(a, "mutual_action_plan") or _says(a, "mutual action plan")),
    Move("reconfirm_close_plan", "Re-confirm the close plan and date with the buyer",
         ("close_date_pushed", "stalled_in_stage"), lambda s, d, b, a: _tagged(a, "reconfirm_close_plan") or _says(a, "close plan")),
    Move("book_next_meeting", "Book the next meeting with a clear agenda before the end of the week",
         ("meeting_slipped", "no_recent_activity"), lambda s, d, b, a: _tagged(a, "book_next_meeting") or _meeting_held(s, d, b, a)),
    Move("walk_through_proposal", "Walk the buyer through the proposal live instead of waiting for them to open it",
         ("proposal_unopened",), lambda s, d, b, a: _tagged(a, "walk_through_proposal") or _proposal_walked(s, d, b, a)),
    Move("address_concern", "Call to address the concern they raised, with the response that has won most often against it",
         ("risk_language",), lambda s, d, b, a: _tagged(a, "address_concern") or _concern_call(s, d, b, a)),
)
MOVE_BY_ID = {m.id: m for m in MOVES}


def move_stats(snapshot: Snapshot, deals: Sequence[Deal], moments: Sequence[datetime],
               signs: Sequence[Mapping[str, Sign]]) -> dict[str, Any]:
    """Per (sign, move): at-risk closed deals with the sign, how many took the move, how many of those won."""
    stats: dict[str, Any] = {}
    for deal, moment, deal_signs in zip(deals, moments, signs, strict=True):
        acts = snapshot.activities_for(deal.remote_id)
        before = [a for a in acts if a.occurred_at <= moment]
        after = [a for a in acts if a.occurred_at > moment]
        won = deal.status is DealStatus.WON
        for code, sign in deal_signs.items():
            if not sign.fired:
                continue
            entry = stats.setdefault(code, {"n": 0, "won": 0, "moves": {}})
            entry["n"] += 1
            entry["won"] += int(won)
            for move in MOVES:
                if code in move.addresses and move.seen(snapshot, deal, before, after):
                    m = entry["moves"].setdefault(move.id, {"n": 0, "won": 0})
                    m["n"] += 1
                    m["won"] += int(won)
    return stats


def recovery_rate(stats: Mapping[str, Any], sign: str, move_id: str) -> tuple[float, int, float]:
    """Shrunk win rate after the move among deals with the sign, its n, and the sign's baseline rate."""
    entry = stats.get(sign, {"n": 0, "won": 0, "moves": {}})
    baseline = (entry["won"] + 1.0) / (entry["n"] + 2.0)
    m = entry["moves"].get(move_id, {"n": 0, "won": 0})
    return (m["won"] + K * baseline) / (m["n"] + K), int(m["n"]), baseline


def next_move(stats: Mapping[str, Any], reasons: Sequence[str]) -> dict[str, Any]:
    """The best-recovering move for the deal's reasons (in order), with the evidence behind its rank."""
    best: tuple[float, int, Move, str, int, float] | None = None
    for rank, sign in enumerate(reasons):
        for order, move in enumerate(MOVES):
            if sign not in move.addresses:
                continue
            rate, n, baseline = recovery_rate(stats, sign, move.id)
            key = (rate, -rank * 100 - order)
            if best is None or key > (best[0], best[1]):
                best = (rate, -rank * 100 - order, move, sign, n, baseline)
    if best is None:
        move = MOVE_BY_ID["book_next_meeting"]
        return {"id": move.id, "text": move.text, "evidence": "no warning sign is firing: keep the deal moving"}
    rate, _, move, sign, n, baseline = best
    named = labels.phrase(sign)
    evidence = (f"{labels.count(n, 'past deal')} with {named} took this move; about {labels.pct(rate)} of them were won, "
                f"against {labels.pct(baseline)} of all deals with {named}"
                if n else f"no past deal with {named} took this move yet: the usual first move for it")
    return {"id": move.id, "text": move.text, "sign": sign, "recovery_rate": round(rate, 4), "n": n,
            "baseline": round(baseline, 4), "evidence": evidence}
