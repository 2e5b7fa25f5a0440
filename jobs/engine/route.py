"""Route one loop's decisions: policy, gate, a DecisionRecord each, then the outbox, the card or a proposal.

Everything for one loop run is written in one transaction, so a crash leaves either the
whole run's records and outbox rows or none, and a re-run recognises decisions by key.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, aliased

from connector.store.tables import (
    CardData,
    DecisionRecord,
    GateStatus,
    LoopRun,
    OutboxItem,
    OutboxKind,
    Proposal,
    ProposalStatus,
    WriteStatus,
    new_id,
)
from crm_adapters.codec import jsonable
from crm_adapters.model import Entity, UserRole
from crm_adapters.snapshot import Snapshot
from crm_adapters.writes import APP_FIELDS, AppField
from jobs.approvals import proposals
from jobs.engine.policy import Autonomy, Verdict, evaluate
from jobs.engine.quality import (
    GateResult,
    QualitySettings,
    computed_values,
    gate,
    gated_texts,
    source_text,
)
from jobs.loops import labels
from jobs.loops.decision import ActionKind, Decision
from jobs.state import outbox, outbox_keys
from jobs.state.attention import Ask, AttentionBudget, Ledger, stamp, task_load

KEY_LENGTH = 200  # DecisionRecord.key's column
DIRECT = {ActionKind.UPDATE_FIELD: OutboxKind.FIELD, ActionKind.CREATE_TASK: OutboxKind.TASK, ActionKind.CREATE_NOTE: OutboxKind.NOTE}


@dataclass
class RouteReport:
    decisions: int = 0
    repeated: int = 0
    autonomy: Counter[str] = field(default_factory=Counter)
    gate: Counter[str] = field(default_factory=Counter)
    proposals: int = 0
    cards: int = 0
    sampled: list[tuple[str, str, str, str]] = field(default_factory=list)  # record id, kind, target's name, summary
    sampled_keys: list[tuple[str]] = field(default_factory=list)  # their decision keys
    waiting: int = 0  # tasks held back by the attention budget (their decisions say "waiting")


@dataclass(frozen=True)
class Context:
    installation_id: str
    loop_run_id: str
    rules: Sequence[Mapping[str, Any]]
    quality: QualitySettings
    paused: bool
    snapshot: Snapshot
    now: datetime
    computed: dict[str, str] = field(default_factory=dict)  # figures this run computed, per target (for evals)
    budget: AttentionBudget = field(default_factory=AttentionBudget)
    admin_url: str = ""  # the app's public base URL, for links in tasks
    ledger: Ledger | None = None  # set by route_all from the tasks already queued


def route_all(session: Session, ctx: Context, decisions: Sequence[Decision]) -> RouteReport:
    """Record every new decision and queue what it asks for; a key seen before is skipped. The run's decisions
    go in one bulk insert, their writes in another (outbox.enqueue_many), their final statuses in one update."""
    report = RouteReport()
    decisions = keyed_to_inputs(decisions, ctx.snapshot)
    ctx.computed.update(computed_values(decisions, ctx.now.date().isoformat()))
    if ctx.ledger is None:
        ctx = replace(ctx, ledger=load_ledger(session, ctx.installation_id, ctx.budget))
    seen = _known_keys(session, ctx.installation_id, [stored_key(d) for d in decisions])
    decisions = after_undone_edits(session, ctx.installation_id, decisions, seen)
    fresh = []
    for decision in decisions:
        if stored_key(decision) in seen:
            report.repeated += 1
            continue
        seen.add(stored_key(decision))
        fresh.append(decision)
    judged = [_judge(ctx, d) for d in fresh]
    rows = [_record_row(ctx, d, verdict, result) for d, verdict, result in judged]
    for start in range(0, len(rows), 1000):
        session.execute(insert(DecisionRecord), rows[start:start + 1000])
    cards = _load_cards(session, ctx.installation_id, [d.target_id for d in fresh if d.kind is ActionKind.UPDATE_CARD])
    writes = _Writes(cards=cards)
    moved = []
    for (decision, _verdict, result), row in zip(judged, rows, strict=True):
        status = _route(session, ctx, decision, result, row["id"], report, writes)
        if status != row["write_status"]:
            moved.append({"id": row["id"], "write_status": status})
    outbox.enqueue_many(session, ctx.installation_id, writes.items)
    for start in range(0, len(moved), 1000):
        session.execute(update(DecisionRecord), moved[start:start + 1000])
    assert ctx.ledger is not None
    proposals.release_waiting(session, ctx.installation_id, ctx.ledger, ctx.now, ctx.admin_url)
    return report


@dataclass
class _Writes:
    """The run's direct writes, queued together at the end; each stamped in decision order (outbox order)."""

    items: list[outbox.Queued] = field(default_factory=list)
    last: datetime = datetime.min.replace(tzinfo=UTC)
    cards: dict[str, CardData] = field(default_factory=dict)  # the run's deal cards by deal id (_load_cards)

    def add(self, key: str, kind: str, payload: dict[str, Any], decision_id: str) -> None:
        self.last = max(datetime.now(UTC), self.last + timedelta(microseconds=1))
        self.items.append(outbox.Queued(key, kind, payload, decision_id, self.last))


VALUED = (ActionKind.UPDATE_FIELD, ActionKind.UPDATE_CARD)


def keyed_to_inputs(decisions: Sequence[Decision], snapshot: Snapshot) -> list[Decision]:
    """A deal's field or card write carries, in its key, a fingerprint of the deal's records: an edited deal (its
    fields, stage changes, activities, roles, account) is a new key, written in the same run, never stale until
    tomorrow; the same write again (a retry, a rerun, the clock alone moving the score) keeps its key and is
    recognised. Whole-snapshot and partial runs see the same records of a deal, so they give it the same key."""
    seen: dict[str, str] = {}
    out = []
    for decision in decisions:
        if decision.kind in VALUED and decision.target is Entity.DEAL and decision.target_id in snapshot.deal_by_id:
            if decision.target_id not in seen:
                seen[decision.target_id] = deal_inputs(snapshot, decision.target_id)
            decision = replace(decision, key=f"{decision.key}:{seen[decision.target_id]}")
        out.append(decision)
    return out


def after_undone_edits(session: Session, installation_id: str, decisions: Sequence[Decision], seen: set[str],
                       ) -> list[Decision]:
    """An edit undone (a deal's records A, then B, then A again) gives the third write the first one's key, yet the CRM
    holds B's value: a known key is a repeat only while no other write to its deal's field or card came after it.
    Otherwise the key takes a digest of the write it supersedes, so it is written once, and recognised on a rerun
    (`seen` gains that key)."""
    known = {stored_key(d) for d in decisions if d.kind in VALUED and d.target is Entity.DEAL and stored_key(d) in seen}
    if not known:
        return list(decisions)
    latest = _latest_since(session, installation_id, sorted(known))
    out = []
    for decision in decisions:
        key = stored_key(decision)
        last = latest.get((decision.loop, decision.kind.value, decision.target_id)) if key in known else None
        if last is not None and last.startswith(f"{key}~"):
            decision = replace(decision, key=last)  # the undone edit's write, already made: a repeat
            seen.add(last)
        elif last is not None and last != key:
            superseded = hashlib.sha1(last.encode()).hexdigest()[:8]
            decision = replace(decision, key=f"{key[:KEY_LENGTH - 9]}~{superseded}")
        out.append(decision)
    return out


def _latest_since(session: Session, installation_id: str, keys: list[str]) -> dict[tuple[str, str, str], str]:
    """The newest decision key of each (loop, kind, deal) that has one of `keys`, among those made since that key.
    Runs of one clock time are ordered by when their loop run started."""
    first, later = aliased(DecisionRecord), aliased(DecisionRecord)
    rows: list[Any] = []
    for start in range(0, len(keys), 500):
        rows += session.execute(
            select(later.loop, later.kind, later.target_id, later.key, later.created_at, LoopRun.started_at)
            .select_from(first).join(later, (later.installation_id == first.installation_id) & (later.target_id == first.target_id)
                  & (later.loop == first.loop) & (later.kind == first.kind) & (later.created_at >= first.created_at))
            .outerjoin(LoopRun, LoopRun.id == later.loop_run_id)
            .where(first.installation_id == installation_id, first.key.in_(keys[start:start + 500]))).all()
    rows.sort(key=lambda r: (r.created_at, r.started_at or r.created_at))
    return {(r.loop, r.kind, r.target_id): r.key for r in rows}


def deal_inputs(snapshot: Snapshot, deal_id: str) -> str:
    """A short digest of a deal's own records, whatever order they were loaded in; the CRM's modification stamps
    and our own fields are left out (our write-back moves them, and must not make a new key)."""
    deal = snapshot.deal_by_id[deal_id]
    records = [deal, snapshot.account_by_id.get(deal.account_id or ""), *snapshot.history_for(deal_id),
               *snapshot.activities_for(deal_id), *snapshot.roles_by_deal.get(deal_id, [])]
    digest = hashlib.sha1()
    for text in sorted(repr(_facts(r)) for r in records if r is not None):
        digest.update(text.encode())
    return digest.hexdigest()[:16]


def _facts(record: Any) -> Any:
    custom = getattr(record, "custom", None)
    mine = {"custom": {k: v for k, v in custom.items() if "salesloop" not in k.lower()}} if isinstance(custom, Mapping) else {}
    return replace(record, remote_updated_at=None, **mine)


def load_ledger(session: Session, installation_id: str, budget: AttentionBudget) -> Ledger:
    """What each person has already been asked (every queued task carries its kind and day)."""
    payloads = session.execute(select(OutboxItem.payload).where(
        OutboxItem.installation_id == installation_id, OutboxItem.kind == OutboxKind.TASK)).scalars()
    return Ledger.from_tasks(budget, payloads)


def attention_summary(session: Session, installation_id: str, installation_settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """What salesloop asked of people (tasks per person per day: median, max), the budget, and what waits for it."""
    payloads = list(session.execute(select(OutboxItem.payload).where(
        OutboxItem.installation_id == installation_id, OutboxItem.kind == OutboxKind.TASK)).scalars())
    asked = [(p.get("owner_id"), date.fromisoformat(str(p["asked_on"])[:10])) for p in payloads if p.get("asked_on")]
    waiting = session.execute(select(Proposal.evidence).where(
        Proposal.installation_id == installation_id, Proposal.status == ProposalStatus.PENDING)).scalars()
    return {**task_load(asked), "budget": AttentionBudget.of(installation_settings).to_json(),
            "approvals_waiting": sum(bool((e or {}).get(proposals.WAITING)) for e in waiting)}


def ask_of(decision: Decision) -> Ask:
    """Which budget a loop's task counts against."""
    if decision.key.startswith("deal_risk:at_risk_list:"):
        return Ask.DIGEST
    if decision.key.startswith("icp:digest:"):
        return Ask.ICP_DIGEST
    return Ask.OTHER


def stored_key(decision: Decision) -> str:
    """A decision's key as DecisionRecord keeps it (cut to its column): what a re-run is recognised by."""
    return decision.key[:KEY_LENGTH]


def _known_keys(session: Session, installation_id: str, keys: list[str]) -> set[str]:
    known: set[str] = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        known.update(session.execute(select(DecisionRecord.key).where(
            DecisionRecord.installation_id == installation_id, DecisionRecord.key.in_(chunk))).scalars())
    return known


def _judge(ctx: Context, decision: Decision) -> tuple[Decision, Verdict, GateResult]:
    verdict = evaluate(ctx.rules, decision)
    return decision, verdict, gate(decision, verdict, _source(ctx, decision, verdict), ctx.quality, paused=ctx.paused)


def _record_row(ctx: Context, decision: Decision, verdict: Verdict, result: GateResult) -> dict[str, Any]:
    """A DecisionRecord's columns (its id made here, so its writes can point at it before it is inserted)."""
    return {
        "id": new_id(), "installation_id": ctx.installation_id, "loop_run_id": ctx.loop_run_id, "loop": decision.loop,
        "kind": decision.kind.value, "target": decision.target.value, "target_id": decision.target_id,
        "key": stored_key(decision), "payload": jsonable(dict(decision.payload)),
        "reasons": [jsonable(r) for r in decision.reasons], "model_version": decision.model_version,
        "policy_verdict": verdict.autonomy.value, "policy_rule": verdict.rule, "gate_verdict": result.status.value,
        "gate_reason": result.reason, "write_status": WriteStatus.PENDING, "created_at": ctx.now,
    }


def _load_cards(session: Session, installation_id: str, deal_ids: list[str]) -> dict[str, CardData]:
    """The run's existing cards in a few queries, by deal id, so each card update finds its row (or knows it has
    none) without one: `session.get` of a card not there yet queried, and flushed every card added before it."""
    unique = sorted(set(deal_ids))
    cards: dict[str, CardData] = {}
    for start in range(0, len(unique), 500):
        cards.update((c.deal_id, c) for c in session.execute(select(CardData).where(
            CardData.installation_id == installation_id, CardData.deal_id.in_(unique[start:start + 500]))).scalars())
    return cards


def _route(session: Session, ctx: Context, decision: Decision, result: GateResult, record_id: str, report: RouteReport,
           writes: _Writes) -> str:
    report.decisions += 1
    report.autonomy[result.autonomy.value] += 1
    report.gate[result.status.value] += 1
    status = _act(session, ctx, decision, result, record_id, report, writes)
    if result.status is GateStatus.SAMPLED:
        report.sampled.append((record_id, decision.kind.value, record_name(ctx.snapshot, decision), _summary(decision)))
        report.sampled_keys.append((decision.key,))
    return status


def _source(ctx: Context, decision: Decision, verdict: Verdict) -> str:
    return source_text(ctx.snapshot, decision, ctx.computed) if gated_texts(decision, verdict) else ""


def _act(session: Session, ctx: Context, decision: Decision, result: GateResult, record_id: str, report: RouteReport,
         writes: _Writes) -> str:
    """What happens to one decision after policy and gate; returns its write status."""
    if result.status is GateStatus.BLOCKED:
        return WriteStatus.BLOCKED
    autonomy = result.autonomy
    if autonomy is Autonomy.FORBIDDEN:
        return WriteStatus.FORBIDDEN
    if decision.kind is ActionKind.UPDATE_CARD and autonomy is not Autonomy.NEEDS_APPROVAL:
        _update_card(session, ctx, decision, writes.cards)
        report.cards += 1
        return WriteStatus.WRITTEN
    if autonomy is Autonomy.NEEDS_APPROVAL or (autonomy is Autonomy.AUTO and proposals.is_playbook(decision)):
        kind = proposals.PLAYBOOK if proposals.is_playbook(decision) else proposals.APPROVAL
        made = proposals.propose(session, ctx.installation_id, decision, decision_id=record_id,
                                 manager_id=manager_for(ctx.snapshot, owner_for(ctx.snapshot, decision)), now=ctx.now, kind=kind,
                                 ledger=ctx.ledger)
        session.flush()  # its task takes its place in the outbox's order now, between the writes around it
        report.proposals += made is not None
        return WriteStatus.AWAITING if made is not None else WriteStatus.SKIPPED
    if autonomy is Autonomy.AUTO and decision.kind in DIRECT:
        payload = _write_payload(ctx, decision)
        if decision.kind is ActionKind.CREATE_TASK:
            if not _fits(ctx, payload.get("owner_id"), ask_of(decision)):
                report.waiting += 1
                return WriteStatus.WAITING
            payload = stamp(payload, ask_of(decision), ctx.now)
        writes.add(outbox_keys.key("", decision.key), DIRECT[decision.kind], payload, record_id)
        return WriteStatus.PENDING
    if not _fits(ctx, owner_for(ctx.snapshot, decision), Ask.OTHER):
        report.waiting += 1
        return WriteStatus.WAITING
    return _draft(ctx, decision, record_id, writes)


def _fits(ctx: Context, person: Any, ask: Ask) -> bool:
    return ctx.ledger is None or ctx.ledger.admit(str(person) if person else None, ask, ctx.now.date())


def _draft(ctx: Context, decision: Decision, record_id: str, writes: _Writes) -> str:
    """A person does it: a task for the owner holding what the loop drafted (emails have no channel of their own)."""
    payload = decision.payload
    subject = str(payload.get("subject") or payload.get("title") or labels.word(decision.kind.value))
    body = str(payload.get("body") or payload.get("summary") or "")
    reasons = "\n".join(f"- {r.text}" for r in decision.reasons)
    writes.add(outbox_keys.key("draft", decision.key), OutboxKind.TASK, stamp({
        "subject": f"[salesloop draft] {subject}"[:250], "body": "\n\n".join(p for p in (body, reasons) if p)[:4000],
        "owner_id": owner_for(ctx.snapshot, decision), "due_at": _due(payload, ctx.now),
        "deal_id": decision.target_id if decision.target is Entity.DEAL else None,
    }, Ask.OTHER, ctx.now), record_id)
    return WriteStatus.PENDING


def _write_payload(ctx: Context, decision: Decision) -> dict[str, Any]:
    payload = dict(decision.payload)
    if decision.kind is ActionKind.UPDATE_FIELD:
        values = {k: v for k, v in payload.items() if k != "mrr"}
        return {"entity": decision.target.value, "remote_id": decision.target_id, "values": jsonable(values)}
    on_deal = decision.target is Entity.DEAL
    if decision.kind is ActionKind.CREATE_NOTE:
        return {"body": str(payload.get("body", "")), "deal_id": decision.target_id}
    return {
        "subject": str(payload.get("subject", ""))[:250], "body": str(payload.get("body", "")),
        "owner_id": payload.get("owner_id") or owner_for(ctx.snapshot, decision), "due_at": _due(payload, ctx.now),
        "deal_id": decision.target_id if on_deal else payload.get("deal_id"),
        "account_id": decision.target_id if decision.target is Entity.ACCOUNT else None,
    }


def _due(payload: Mapping[str, Any], now: datetime) -> str:
    due = payload.get("due_at")
    return str(due) if due else (now + timedelta(days=1)).isoformat()


def _update_card(session: Session, ctx: Context, decision: Decision, cards: dict[str, CardData]) -> None:
    payload = dict(jsonable(dict(decision.payload)))
    section = str(payload.pop("section", decision.loop))
    row = cards.get(decision.target_id)
    if row is None:
        row = cards[decision.target_id] = CardData(installation_id=ctx.installation_id, deal_id=decision.target_id, payload={})
        session.add(row)
    row.payload = {**(row.payload or {}), section: payload}
    row.updated_at = ctx.now


def owner_for(snapshot: Snapshot, decision: Decision) -> str | None:
    if decision.payload.get("owner_id"):
        return str(decision.payload["owner_id"])
    deal = snapshot.deal_by_id.get(decision.target_id) if decision.target is Entity.DEAL else None
    if deal is not None:
        return deal.owner_id
    account = snapshot.account_by_id.get(decision.target_id) if decision.target is Entity.ACCOUNT else None
    return account.owner_id if account is not None else None


def manager_for(snapshot: Snapshot, owner_id: str | None) -> str | None:
    """The owner's manager, else the first manager in the org (approvals must reach someone who can approve)."""
    owner = snapshot.user_by_id.get(owner_id or "")
    if owner is not None and owner.manager_id:
        return owner.manager_id
    managers = snapshot.users_with_role(UserRole.MANAGER)
    return managers[0].remote_id if managers else owner_id


def record_name(snapshot: Snapshot, decision: Decision) -> str:
    """The record a decision is about, as people know it: 'deal Acme - Platform', 'account Ironview'."""
    if decision.target is Entity.DEAL and decision.target_id in snapshot.deal_by_id:
        return f"deal {snapshot.deal_by_id[decision.target_id].name or decision.target_id}"
    if decision.target is Entity.ACCOUNT and decision.target_id in snapshot.account_by_id:
        return f"account {snapshot.account_by_id[decision.target_id].name or decision.target_id}"
    user = snapshot.user_by_id.get(decision.target_id) if decision.target is Entity.USER else None
    return user.name if user is not None and user.name else f"{decision.target.value} {decision.target_id}"


FIELD_LABELS = {spec.field.value: spec.label for spec in APP_FIELDS}


def _summary(decision: Decision) -> str:
    """What was written, in words: 'Risk score (0-100) 57; Risk level Low' or the task's subject."""
    payload = decision.payload
    if decision.kind is ActionKind.UPDATE_FIELD:
        shown = [(k, v) for k, v in payload.items() if k != AppField.SCORED_AT.value][:3]
        return "; ".join(f"{FIELD_LABELS.get(k, labels.word(k))}: {labels.level(str(v)) if k == 'risk_level' else v}"
                         for k, v in shown)[:200]
    return str(payload.get("subject") or payload.get("title") or "")[:200]
