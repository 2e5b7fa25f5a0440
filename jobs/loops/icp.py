"""ICP loop: which firmographics define the best customers, an ICP fit on every account, lookalike tasks.

learn: closed deals with their accounts -> per segment (field=value) a shrunk win rate (beta-binomial,
prior pooled over the field's values) compared with the rest, and an L2-regularised logistic regression
on the account's one-hot firmographics for the score. Signal gate: nothing is scored, proposed or
tasked unless at least one segment is decisively better or worse (Bonferroni over all segments).
decide: ICP_FIT (0-100, the model's win probability) with the segments behind it; a proposal to change
the written ICP definition; one weekly digest task for the SDR team lead with the top lookalike accounts.

Lookalikes (documented cut-off): an account with no open deal and no recent win, at least one segment
that wins decisively more and none that wins decisively less, whose fit is at or above both the
TASK_PERCENTILE-th percentile of all accounts' fits and the median fit of won deals. Only segments
that win more are cited as evidence of fit; the digest lists the best DIGEST_SIZE, and says how many
more are above the cut-off (they carry the ICP fit field: nothing is lost).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Self

import numpy as np
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
from sklearn.metrics import roc_auc_score  # type: ignore[import-untyped]
from sklearn.model_selection import StratifiedKFold, cross_val_predict  # type: ignore[import-untyped]

from crm_adapters.model import Account, Deal, DealStatus, Entity, UserRole
from crm_adapters.snapshot import Snapshot
from crm_adapters.writes import AppField
from jobs.loops import labels
from jobs.loops import stats as bayes
from jobs.loops._proposals import applied, describe, proposal
from jobs.loops.base import Learned, LoopDefinition
from jobs.loops.decision import ActionKind, Decision, Reason

NAME = "icp"
PARAMS: dict[str, Any] = {"min_n": 10, "min_lift": 0.03, "C": 0.5, "custom_fields": [], "task_days": 3,
                          "recent_win_days": 180, "task_percentile": 90, "digest_size": 10}
def _no_definition() -> dict[str, list[str]]:
    """A fresh empty playbook (each state its own lists)."""
    return {"include": [], "exclude": []}


@dataclass(frozen=True)
class IcpState:
    """Per segment (field=value): its shrunk win rate against the rest and a verdict; the fit model (None
    without both outcomes), whether any segment is decisive, and the approved written ICP definition."""

    params: Mapping[str, Any] = field(default_factory=lambda: dict(PARAMS))
    segments: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    signal: bool = False
    model: Mapping[str, Any] | None = None
    cv_auc: float | None = None
    base_rate: float = 0.0
    n_deals: int = 0
    lookalike_min: float | None = None
    definition: Mapping[str, Any] = field(default_factory=_no_definition)
    approved: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        return cls(params=dict(data.get("params") or PARAMS), segments=dict(data.get("segments") or {}),
                   signal=bool(data.get("signal")), model=data.get("model"), cv_auc=data.get("cv_auc"),
                   base_rate=float(data.get("base_rate", 0.0)), n_deals=int(data.get("n_deals", 0)),
                   lookalike_min=data.get("lookalike_min"), definition=dict(data.get("definition") or _no_definition()),
                   approved=tuple(data.get("approved") or ()))

    def to_json(self) -> dict[str, Any]:
        return {"params": dict(self.params), "segments": dict(self.segments), "signal": self.signal, "model": self.model,
                "cv_auc": self.cv_auc, "base_rate": self.base_rate, "n_deals": self.n_deals,
                "lookalike_min": self.lookalike_min, "definition": dict(self.definition), "approved": list(self.approved)}


_EMP = ((50, "<50"), (200, "50-199"), (1000, "200-999"), (5000, "1000-4999"))
_REV = ((1e6, "<1M"), (1e7, "1M-10M"), (1e8, "10M-100M"), (1e9, "100M-1B"))


def _band(value: float | None, bands: tuple[tuple[float, str], ...], top: str) -> str:
    if value is None:
        return "unknown"
    return next((label for limit, label in bands if value < limit), top)


def account_features(account: Account, custom_fields: list[str]) -> dict[str, str]:
    """The firmographic segments of an account: field -> value (bands for sizes, 'unknown' when empty)."""
    feats = {"industry": (account.industry or "unknown").strip().lower(),
             "employee_band": _band(account.employees, _EMP, "5000+"),
             "revenue_band": _band(float(account.annual_revenue) if account.annual_revenue is not None else None, _REV, "1B+"),
             "country": (account.country or "unknown").strip().upper()}
    for name in custom_fields:
        value = account.custom.get(name)
        feats[f"custom.{name}"] = str(value).strip().lower() if value not in (None, "") else "unknown"
    return feats


def deal_features(deal: Deal, account: Account, custom_fields: list[str]) -> dict[str, str]:
    return {**account_features(account, custom_fields), "lead_source": (deal.lead_source or "unknown").strip().lower()}


def segment_stats(rows: list[tuple[dict[str, str], bool]], params: Mapping[str, Any],
                  previous: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Per field=value: shrunk win rate, the rest's rate, P(better), the running e-value and a verdict
    (e-BH over every segment at false-discovery rate 5%, valid at every weekly look)."""
    fields = sorted({f for feats, _ in rows for f in feats})
    cells = {(f, v): [0, 0] for feats, _ in rows for f, v in feats.items()}
    for feats, won in rows:
        for f, v in feats.items():
            cells[(f, v)][0] += won
            cells[(f, v)][1] += 1
    total_k, total_n = sum(w for _, w in rows), len(rows)
    out: dict[str, Any] = {}
    for f in fields:
        values = {v: c for (ff, v), c in cells.items() if ff == f}
        prior = bayes.pooled_prior([(k, n) for k, n in values.values()])
        for v, (k, n) in sorted(values.items()):
            seg, rest = bayes.posterior(k, n, prior), bayes.posterior(total_k - k, total_n - n, prior)
            p = bayes.prob_greater(seg, rest)
            e = bayes.e_gap(k, n, total_k - k, total_n - n)
            out[f"{f}={v}"] = {"field": f, "value": v, "segment": seg.as_dict(), "rest": rest.as_dict(),
                               "p_better": round(p, 4), "lift": round(seg.mean - rest.mean, 4),
                               **bayes.carried(dict(previous or {}).get(f"{f}={v}"), e)}
    verdicts = bayes.judge({c: (s["e_value"], s["lift"], min(s["segment"]["n"], s["rest"]["n"])) for c, s in out.items()},
                           min_n=params["min_n"], min_lift=params["min_lift"])
    for c, v in verdicts.items():
        out[c]["verdict"] = v
    return out


def _fit(rows: list[tuple[dict[str, str], bool]], C: float) -> tuple[dict[str, Any], float | None]:
    """L2 logistic regression on one-hot account segments; returns the model as data and its CV AUC."""
    names = sorted({f"{f}={v}" for feats, _ in rows for f, v in feats.items() if f != "lead_source"})
    index = {n: i for i, n in enumerate(names)}
    X = np.zeros((len(rows), len(names)))
    for r, (feats, _) in enumerate(rows):
        for f, v in feats.items():
            if f != "lead_source":
                X[r, index[f"{f}={v}"]] = 1.0
    y = np.array([int(w) for _, w in rows])
    model = LogisticRegression(C=C, max_iter=1000)
    auc = None
    if min(y.sum(), len(y) - y.sum()) >= 5:
        folds = StratifiedKFold(5, shuffle=True, random_state=0)
        auc = float(roc_auc_score(y, cross_val_predict(model, X, y, cv=folds, method="predict_proba")[:, 1]))
    model.fit(X, y)
    return {"intercept": float(model.intercept_[0]), "coef": {n: round(float(c), 5) for n, c in zip(names, model.coef_[0], strict=True)}}, auc


def score(model: Mapping[str, Any], feats: Mapping[str, str]) -> tuple[float, list[tuple[str, float]]]:
    """Win probability from the model as data, and each segment's contribution (log-odds)."""
    parts = [(f"{f}={v}", model["coef"].get(f"{f}={v}", 0.0)) for f, v in feats.items() if f != "lead_source"]
    z = model["intercept"] + sum(c for _, c in parts)
    return 1.0 / (1.0 + np.exp(-z)), sorted(parts, key=lambda p: -abs(p[1]))


def learn(snapshot: Snapshot, state: IcpState | None, now: datetime) -> Learned[IcpState]:
    """Shrunk segment win rates and the fit model from closed deals; keep the approved ICP definition."""
    prev = state or IcpState(params={})
    params = {**PARAMS, **dict(prev.params)}
    rows = [(deal_features(d, snapshot.account_by_id[d.account_id], params["custom_fields"]), d.status is DealStatus.WON)
            for d in snapshot.closed_deals() if d.account_id in snapshot.account_by_id]
    segments = segment_stats(rows, params, prev.segments if state else None) if rows else {}
    signal = any(s["verdict"] in ("better", "worse") for s in segments.values())
    model, auc = _fit(rows, params["C"]) if len({w for _, w in rows}) == 2 else (None, None)
    won_scores = sorted(score(model, f)[0] for f, w in rows if w) if model else []
    base = sum(w for _, w in rows) / len(rows) if rows else 0.0
    new_state = IcpState(params=params, segments=segments, signal=signal, model=model, cv_auc=auc,
                         base_rate=round(base, 4), n_deals=len(rows),
                         lookalike_min=float(np.median(won_scores)) if won_scores else None,
                         definition=dict(prev.definition or _no_definition()), approved=prev.approved)
    metrics = {"n_deals": len(rows), "base_rate": round(base, 4), "cv_auc": auc, "signal": signal,
               "drivers": {k: s["verdict"] for k, s in segments.items() if s["verdict"] in ("better", "worse")}}
    return Learned(state=new_state, metrics=metrics)


def _segment_reason(key: str, s: Mapping[str, Any], weight: float) -> Reason:
    seg, rest = bayes.Posterior(**s["segment"]), bayes.Posterior(**s["rest"])
    named = labels.segment(key)
    return Reason(code=f"segment_{s['verdict'].replace(' ', '_')}", weight=weight,
                  text=f"{named[:1].upper() + named[1:]}: won {describe(seg)} vs {describe(rest)} elsewhere",
                  evidence=(f"{named}: {seg.k} won of {seg.n}", f"others: {rest.k} won of {rest.n}"))


def _proposal(state: IcpState) -> Decision | None:
    definition = state.definition
    include, exclude = set(definition.get("include", [])), set(definition.get("exclude", []))
    diff: list[dict[str, Any]] = []
    for key, s in sorted(state.segments.items()):
        if s["verdict"] == "better" and key not in include:
            diff += [{"op": "add", "field": "include", "value": key}] + ([{"op": "remove", "field": "exclude", "value": key}] if key in exclude else [])
        elif s["verdict"] == "worse" and key not in exclude:
            diff += [{"op": "add", "field": "exclude", "value": key}] + ([{"op": "remove", "field": "include", "value": key}] if key in include else [])
    if not diff:
        return None
    keys = sorted({d["value"] for d in diff})
    segments = state.segments
    reasons = [_segment_reason(k, segments[k], segments[k]["lift"]) for k in keys]
    evidence = {k: segments[k] for k in keys} | {"_model": {"cv_auc": state.cv_auc, "n_deals": state.n_deals}}
    adds = [labels.segment(d["value"]) for d in diff if d["op"] == "add" and d["field"] == "include"]
    named = " and ".join(adds[:2]) + (f" and {labels.count(len(adds) - 2, 'more segment')}" if len(adds) > 2 else "")
    title = f"ICP definition: include {named}" if adds else "ICP definition: exclude low-win segments"
    return proposal(NAME, title, diff, evidence, reasons, n=state.n_deals, model_version=_version(state))


def _version(state: IcpState) -> str:
    return bayes.fingerprint(state.model)


def _team_lead(snapshot: Snapshot) -> str | None:
    """The SDRs' manager (most common manager_id among SDRs), else any manager."""
    managers = Counter(u.manager_id for u in snapshot.users_with_role(UserRole.SDR, UserRole.BDR) if u.manager_id)
    if managers:
        return managers.most_common(1)[0][0]
    leads = sorted(u.remote_id for u in snapshot.users_with_role(UserRole.MANAGER))
    return leads[0] if leads else None


def _account_decisions(snapshot: Snapshot, state: IcpState, now: datetime) -> list[Decision]:
    """ICP fit on every account; the lookalikes above the documented cut-off in one digest for the SDR lead."""
    params, model, version, segments = state.params, state.model or {}, _version(state), state.segments  # decide: a model
    out, candidates, fits = [], [], []
    busy = _busy_accounts(snapshot, params, now)
    for account in sorted(snapshot.accounts, key=lambda a: a.remote_id):
        p, parts = score(model, account_features(account, params["custom_fields"]))
        fit = int(round(100 * p))
        fits.append(fit)
        ranked = sorted(parts, key=lambda kc: (segments.get(kc[0], {}).get("verdict") not in ("better", "worse"), -abs(kc[1])))
        reasons = [_segment_reason(k, segments[k], c) for k, c in ranked[:3] if k in segments]
        out.append(Decision(loop=NAME, kind=ActionKind.UPDATE_FIELD, target=Entity.ACCOUNT, target_id=account.remote_id,
                            key=f"icp:fit:{account.remote_id}:{version}:{fit}", payload={AppField.ICP_FIT.value: fit},
                            reasons=tuple(reasons), model_version=version))
        verdicts = [segments.get(k, {}).get("verdict") for k, _ in parts]
        if account.remote_id in busy or "better" not in verdicts or "worse" in verdicts or p < (state.lookalike_min or 1.0):
            continue
        better = [k for k, _ in parts if segments.get(k, {}).get("verdict") == "better"]  # only what wins more
        candidates.append((fit, account, [_segment_reason(k, segments[k], segments[k]["lift"]) for k in better]))
    cut = int(np.percentile(fits, params["task_percentile"])) if fits else 100
    chosen = sorted((c for c in candidates if c[0] >= cut), key=lambda c: (-c[0], c[1].remote_id))
    lead = _team_lead(snapshot)
    if chosen and lead:
        out.append(_digest(chosen, cut, lead, params, version, now))
    return out


def _busy_accounts(snapshot: Snapshot, params: Mapping[str, Any], now: datetime) -> set[str | None]:
    busy = {d.account_id for d in snapshot.open_deals()}
    return busy | {d.account_id for d in snapshot.deals if d.status is DealStatus.WON and d.closed_at
                   and d.closed_at >= (now - timedelta(days=params["recent_win_days"])).date()}


def _digest(chosen: list[tuple[int, Account, list[Reason]]], cut: int, lead: str, params: Mapping[str, Any],
            version: str, now: datetime) -> Decision:
    """One task a week for the SDR lead: the best lookalike accounts, the segments that win more said once above them."""
    shown = chosen[: params["digest_size"]]
    why = list(dict.fromkeys(r.text for _, _, rs in shown for r in rs))
    lines = [f"Accounts with no open deal that look like our best customers (ICP fit {cut} or more, "
             f"the {params['task_percentile']}th percentile of all accounts). Segments that win more:",
             *[f"* {text}" for text in why], "Accounts:"]
    lines += [f"- {account.name}: ICP fit {fit} of 100 ({'; '.join(r.evidence[0].split(':')[0] for r in reasons)})"
              for fit, account, reasons in shown]
    more = len(chosen) - len(shown)
    tail = "{n} more accounts above the cut-off: sort accounts by the ICP fit field."
    body = labels.bounded(lines + ([tail.format(n=more)] if more > 0 else []), 3800, tail)
    year, week, _ = now.isocalendar()
    quoted = tuple(dict.fromkeys([a.name for _, a, _ in shown] + why))
    return Decision(loop=NAME, kind=ActionKind.CREATE_TASK, target=Entity.USER, target_id=lead,
                    key=f"icp:digest:{lead}:{year}-w{week:02d}", model_version=version,
                    reasons=(Reason("icp_digest", f"{labels.count(len(chosen), 'lookalike account')}", 0.0, quoted),),
                    payload={"subject": f"This week's ICP lookalikes: {labels.count(len(shown), 'account')} to open",
                             "body": body, "owner_id": lead, "cut_off": cut,
                             "percentile": params["task_percentile"], "more": more, "accounts": len(chosen),
                             "account_ids": [a.remote_id for _, a, _ in shown], "fits": [f for f, _, _ in shown],
                             "due_at": (now + timedelta(days=params["task_days"])).isoformat()})


def decide(snapshot: Snapshot, state: IcpState, now: datetime) -> list[Decision]:
    """Nothing without signal; else the ICP proposal, fit on every account, the weekly lookalike digest."""
    if not state.signal or not state.model:
        return []
    prop = _proposal(state)
    return ([prop] if prop else []) + _account_decisions(snapshot, state, now)


def approve(state: IcpState, payload: Mapping[str, Any]) -> IcpState:
    """A manager approved: the written ICP definition takes the change."""
    definition, approved = applied(state.definition, state.approved, payload)
    return replace(state, definition=definition, approved=approved)


DEFINITION = LoopDefinition(name=NAME, title="Ideal customer profile", learn=learn, decide=decide, approve=approve,
                            description="Firmographics of won vs lost deals -> ICP fit, ICP definition, a weekly lookalike digest",
                            state_type=IcpState)
