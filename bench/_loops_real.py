"""Real-data evaluations of the learning loops (PersuasionForGood, bank marketing, IBM, Maven)."""

from __future__ import annotations

import csv
import math
import random
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
OBJECTION_ACTS = {"negative-reaction-to-donation", "disagree-donation", "disagree-donation-more", "negative-to-inquiry"}
NOT_A_STRATEGY = {"", "acknowledgement", "thank", "greeting", "closing", "other", "you-are-welcome"}
MIN_ARM_MONTH = 30  # an arm's month rate counts from this many contacts; below, its rate so far stands in
PARAMS = {"min_n": 8, "min_lift": 0.03}  # as jobs.loops.objections.PARAMS


def _donors(rows: list[dict[str, str]]) -> dict[str, bool]:
    """Dialog id -> did the persuadee (role 1) donate anything."""
    return {r["B2"]: float(r["B6"] or 0) > 0 for r in rows if r["B4"] == "1"}


def _annotated_events() -> list[dict[str, Any]]:
    """(objection act, the persuader's next strategy, donated) once per dialog and pair, from the 300 annotated."""
    from _xlsx import read_rows

    base = DATA / "persuasionforgood"
    donors = _donors(read_rows(base / "AnnotatedData__300_info.xlsx"))
    by_dialog: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in read_rows(base / "AnnotatedData__300_dialog.xlsx"):
        by_dialog[row["B2"]].append(row)
    seen: dict[tuple[str, str, str], dict[str, Any]] = {}
    for dialog, rows in by_dialog.items():
        if dialog not in donors:
            continue
        for i, row in enumerate(rows):
            if row["B4"] != "1" or row["ee_label_1"] not in OBJECTION_ACTS:
                continue
            after = [r for r in rows[i + 1:] if r["B4"] == "0"]
            turn = [r for r in after if r["Turn"] == after[0]["Turn"]] if after else []
            labels = [r["er_label_1"] for r in turn if r["er_label_1"] not in NOT_A_STRATEGY]
            strategy = labels[0] if labels else ("acknowledgement" if turn else None)
            if strategy:
                seen.setdefault((dialog, row["ee_label_1"], strategy), {
                    "deal": dialog, "objection": row["ee_label_1"], "strategy": strategy, "success": donors[dialog]})
    return list(seen.values())


def _text_events(limit_dialogs: int | None = None) -> tuple[list[dict[str, Any]], int]:
    """The loop's own text path on all 1,017 dialogs: extractor objections, response classifier, donated."""
    from jobs.nlp import extract
    from jobs.nlp.responses import classify_response

    base = DATA / "persuasionforgood"
    with (base / "FullData__full_info.csv").open(encoding="utf-8") as fh:
        donors = _donors(list(csv.DictReader(fh)))
    turns: dict[str, dict[tuple[int, str], list[str]]] = defaultdict(lambda: defaultdict(list))
    with (base / "FullData__full_dialog.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            turns[row["B2"]][(int(row["Turn"]), row["B4"])].append(row["Unit"])
    seen: dict[tuple[str, str, str], dict[str, Any]] = {}
    persuadee_turns = 0
    for dialog in sorted(turns)[:limit_dialogs]:
        if dialog not in donors:
            continue
        order = sorted(turns[dialog], key=lambda k: (k[0], k[1] == "0"))  # persuader answers in the next turn
        for j, (turn, role) in enumerate(order):
            if role != "1":
                continue
            persuadee_turns += 1
            found = extract(" ".join(turns[dialog][(turn, role)]), speaker_aware=False).objection_ids()
            reply = next((k for k in order[j + 1:] if k[1] == "0"), None)
            if not found or reply is None:
                continue
            strategy = classify_response(" ".join(turns[dialog][reply]))
            for objection in sorted(found):
                seen.setdefault((dialog, objection, strategy), {"deal": dialog, "objection": objection,
                                                                "strategy": strategy, "success": donors[dialog]})
    return list(seen.values()), persuadee_turns


def _frequency_table(evts: list[dict[str, Any]]) -> dict[tuple[str, str], tuple[int, int]]:
    cells: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for e in evts:
        cells[(e["objection"], e["strategy"])][0] += int(e["success"])
        cells[(e["objection"], e["strategy"])][1] += 1
    return {k: (v[0], v[1]) for k, v in cells.items()}


def _split_comparison(evts: list[dict[str, Any]], splits: int = 40) -> dict[str, float]:
    """Half/half splits by dialog: held-out log loss and the held-out lift of each method's top pick."""
    from jobs.loops.objections import library

    dialogs = sorted({e["deal"] for e in evts})
    loss = {"frequency": [], "bayes": []}
    lift = {"frequency": [], "bayes": []}
    for s in range(splits):
        rnd = random.Random(s)
        train_ids = set(rnd.sample(dialogs, len(dialogs) // 2))
        train = [e for e in evts if e["deal"] in train_ids]
        test = [e for e in evts if e["deal"] not in train_ids]
        freq = _frequency_table(train)
        lib = library(train, PARAMS)
        bayes_rate = {(o, r["strategy"]): r["mean"] for o, v in lib.items() for r in v["ranked"]}
        for name, rate in (("frequency", {k: min(max(a / b, 0.01), 0.99) for k, (a, b) in freq.items()}), ("bayes", bayes_rate)):
            scored = [(rate[(e["objection"], e["strategy"])], e["success"]) for e in test if (e["objection"], e["strategy"]) in rate]
            loss[name].append(-float(np.mean([math.log(p if y else 1 - p) for p, y in scored])))
        test_freq = _frequency_table(test)
        for o in {o for o, _ in freq}:
            raw_top = max((k for k in freq if k[0] == o), key=lambda k: (freq[k][0] / freq[k][1], k[1]))
            bayes_top = (o, lib[o]["ranked"][0]["strategy"])
            base_k = sum(v[0] for k, v in test_freq.items() if k[0] == o)
            base_n = sum(v[1] for k, v in test_freq.items() if k[0] == o)
            for name, top in (("frequency", raw_top), ("bayes", bayes_top)):
                if top in test_freq and base_n:
                    lift[name].append(test_freq[top][0] / test_freq[top][1] - base_k / base_n)
    return {"holdout_logloss_frequency": round(float(np.mean(loss["frequency"])), 4),
            "holdout_logloss_bayes": round(float(np.mean(loss["bayes"])), 4),
            "holdout_top_pick_lift_frequency": round(float(np.mean(lift["frequency"])), 4),
            "holdout_top_pick_lift_bayes": round(float(np.mean(lift["bayes"])), 4),
            "top_pick_evaluated_frequency": len(lift["frequency"]), "top_pick_evaluated_bayes": len(lift["bayes"])}


def persuasion() -> dict[str, Any]:
    """Objection responses on real persuasion dialogs: the Bayesian library vs a frequency table."""
    from jobs.loops.objections import library

    evts = _annotated_events()
    lib = library(evts, PARAMS)
    freq = _frequency_table(evts)
    rows = []
    for objection, entry in lib.items():
        raw_top = max((k for k in freq if k[0] == objection), key=lambda k: (freq[k][0] / freq[k][1], k[1]))
        for r in entry["ranked"][:4]:
            rows.append({"objection": objection, "strategy": r["strategy"], "n": r["n"], "k": r["k"], "raw": round(r["k"] / r["n"], 3),
                         "mean": r["mean"], "lo": r["lo"], "hi": r["hi"], "verdict": r["verdict"],
                         "raw_top": raw_top[1] == r["strategy"]})
    text_evts, turns = _text_events()
    text_lib = library(text_evts, PARAMS)
    decisive = sum(1 for e in lib.values() for r in e["ranked"] if r["verdict"] in ("better", "worse"))
    return {"events": len(evts), "dialogs": len({e["deal"] for e in evts}), "rows": rows, "decisive": decisive,
            **_split_comparison(evts),
            "text_path": {"persuadee_turns": turns, "events": len(text_evts),
                          "objections": {o: v["n"] for o, v in text_lib.items()},
                          "decisive": sum(1 for e in text_lib.values() for r in e["ranked"] if r["verdict"] in ("better", "worse")),
                          "top": {o: (v["ranked"][0]["strategy"], v["ranked"][0]["n"], v["ranked"][0]["verdict"]) for o, v in text_lib.items()}}}


def _bank_rows() -> list[dict[str, str]]:
    with (DATA / "uci-bank-marketing" / "bank-additional-full.csv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter=";"))


def _arm(row: dict[str, str]) -> str:
    n = int(row["campaign"])
    band = "1" if n == 1 else ("2-3" if n <= 3 else "4+")
    return f"{row['contact']}/{band}"


def bank() -> dict[str, Any]:
    """Outbound contact policy (channel x contact-count arms) learned month by month, evaluated forward."""
    from jobs.loops.sequences import PARAMS as SEQ
    from jobs.loops.sequences import readout

    rows, periods, last = _bank_rows(), [], None
    for row in rows:  # the file is in date order; a new month string starts a new period
        if row["month"] != last:
            periods.append([])
            last = row["month"]
        periods[-1].append(row)
    cells: dict[str, dict[str, int]] = defaultdict(lambda: {"n": 0, "k": 0, "holdout_n": 0, "holdout_k": 0})
    arms = sorted({_arm(r) for r in rows})
    totals = {"bandit": 0.0, "uniform": 0.0, "logged": 0.0, "oracle": 0.0, "contacts": 0}
    monthly = []
    for i, period in enumerate(periods):
        month = defaultdict(lambda: [0, 0])
        for r in period:
            month[_arm(r)][0] += r["y"] == "yes"
            month[_arm(r)][1] += 1
        so_far = {a: (cells[a]["k"] + 1) / (cells[a]["n"] + 2) for a in arms}
        rate = {a: month[a][0] / month[a][1] if month[a][1] >= MIN_ARM_MONTH else so_far[a] for a in arms}
        view = {a: dict(cells[a]) for a in arms}
        alloc = readout("bank", view, set(), {**SEQ, "min_n": 10**9})["variants"] if i else {a: {"allocation": 1 / len(arms)} for a in arms}
        n = len(period)
        got = {"bandit": sum(alloc[a]["allocation"] * rate[a] for a in arms) * n,
               "uniform": sum(rate[a] for a in arms) / len(arms) * n,
               "logged": sum(month[a][0] for a in arms), "oracle": max(rate.values()) * n}
        for k, v in got.items():
            totals[k] += v
        totals["contacts"] += n
        monthly.append({"period": i, "month": period[0]["month"], "n": n, **{k: round(v / n, 4) for k, v in got.items()},
                        "bandit_top": max(arms, key=lambda a: alloc[a]["allocation"])})
        for a in arms:
            cells[a]["n"] += month[a][1]
            cells[a]["k"] += month[a][0]
    rates = {k: round(v / totals["contacts"], 4) for k, v in totals.items() if k != "contacts"}
    return {"periods": len(periods), "contacts": totals["contacts"], "arms": arms, "rate": rates, "monthly": monthly}


IBM_FIELDS = {"Region": "region", "Client Size By Revenue": "size_revenue", "Client Size By Employee Count": "size_employees",
              "Revenue From Client Past Two Years": "past_revenue", "Supplies Group": "supplies_group"}


def _ibm_records(rows: list[dict[str, str]]) -> tuple[list[Any], list[Any]]:
    from crm_adapters.model import Account, Crm, Deal, DealStatus

    accounts, deals = [], []
    t0 = datetime(2015, 1, 1, tzinfo=UTC)
    for r in rows:
        oid = r["Opportunity Number"]
        custom = {v: r[k] for k, v in IBM_FIELDS.items()}
        accounts.append(Account(crm=Crm.SANDBOX, remote_id=f"a{oid}", name=oid, custom=custom))
        won = r["Opportunity Result"] == "Won"
        deals.append(Deal(crm=Crm.SANDBOX, remote_id=oid, account_id=f"a{oid}", stage_id="105" if won else "106",
                          status=DealStatus.WON if won else DealStatus.LOST, lead_source=r["Route To Market"],
                          created_at=t0, closed_at=t0.date()))
    return accounts, deals


def _ibm_split(rows: list[dict[str, str]], how: str) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    if how == "random":
        rnd = random.Random(0)
        order = rows[:]
        rnd.shuffle(order)
    else:  # opportunity numbers assumed to grow with time
        order = sorted(rows, key=lambda r: int(r["Opportunity Number"]))
    cut = int(len(order) * 0.8)
    return order[:cut], order[cut:]


def ibm() -> dict[str, Any]:
    """ICP fit on IBM's firmographic fields: the loop's model vs naive Bayes and gradient boosting, same fields."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.naive_bayes import CategoricalNB
    from sklearn.preprocessing import OrdinalEncoder

    from crm_adapters.snapshot import Snapshot
    from jobs.loops import icp

    with (DATA / "ibm-sales-win-loss" / "WA_Fn-UseC_-Sales-Win-Loss.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    out: dict[str, Any] = {"fields": list(IBM_FIELDS), "rows": len(rows)}
    now = datetime(2016, 1, 1, tzinfo=UTC)
    for how in ("random", "by_opportunity_number"):
        train, test = _ibm_split(rows, how)
        accounts, deals = _ibm_records(train)
        state = icp.learn(Snapshot(accounts=tuple(accounts), deals=tuple(deals)), icp.IcpState.from_json({"params": {"custom_fields": list(IBM_FIELDS.values())}}), now).state
        y = np.array([r["Opportunity Result"] == "Won" for r in test])
        test_accounts, _ = _ibm_records(test)
        loop_scores = [icp.score(state.model or {}, icp.account_features(a, list(IBM_FIELDS.values())))[0] for a in test_accounts]
        enc = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
        Xtr = enc.fit_transform([[r[k] for k in IBM_FIELDS] for r in train])
        Xte = enc.transform([[r[k] for k in IBM_FIELDS] for r in test])
        ytr = np.array([r["Opportunity Result"] == "Won" for r in train])
        nb = CategoricalNB(min_categories=[len(c) for c in enc.categories_]).fit(Xtr, ytr)
        Xte_nb = np.where(Xte < 0, 0, Xte)
        gb = HistGradientBoostingClassifier(categorical_features=[True] * len(IBM_FIELDS), random_state=0).fit(Xtr, ytr)
        out[how] = {"icp_loop_lr": round(roc_auc_score(y, loop_scores), 4),
                    "naive_bayes": round(roc_auc_score(y, nb.predict_proba(Xte_nb)[:, 1]), 4),
                    "gradient_boosting": round(roc_auc_score(y, gb.predict_proba(Xte)[:, 1]), 4),
                    "drivers": {k: s["verdict"] for k, s in state.segments.items() if s["verdict"] in ("better", "worse")},
                    "train": len(train), "test": len(test)}
    return out


def maven() -> dict[str, Any]:
    """Negative control: the fictitious Maven CRM through every loop; nothing may be proposed."""
    from crm_adapters.model import Account, Crm, Deal, DealStatus, User, UserRole
    from crm_adapters.snapshot import Snapshot
    from jobs.loops import discovery, icp, objections, sequences
    from jobs.loops.decision import ActionKind

    base = DATA / "maven-crm-sales-opportunities"
    read = lambda name: list(csv.DictReader((base / name).open(encoding="utf-8")))  # noqa: E731
    users = [User(crm=Crm.SANDBOX, remote_id=r["sales_agent"], name=r["sales_agent"], role=UserRole.AE, manager_id=r["manager"])
             for r in read("sales_teams.csv")]
    accounts = [Account(crm=Crm.SANDBOX, remote_id=r["account"], name=r["account"], industry=r["sector"],
                        employees=int(r["employees"]), annual_revenue=Decimal(r["revenue"]) * 1_000_000,
                        country=r["office_location"]) for r in read("accounts.csv")]
    deals = []
    for r in read("sales_pipeline.csv"):
        status = {"Won": DealStatus.WON, "Lost": DealStatus.LOST}.get(r["deal_stage"], DealStatus.OPEN)
        closed = datetime.fromisoformat(r["close_date"]).date() if status is not DealStatus.OPEN and r["close_date"] else None
        deals.append(Deal(crm=Crm.SANDBOX, remote_id=r["opportunity_id"], account_id=r["account"] or None,
                          stage_id={"Won": "105", "Lost": "106"}.get(r["deal_stage"], "102"), status=status,
                          owner_id=r["sales_agent"], deal_type=r["product"], closed_at=closed))
    snap = Snapshot(users=tuple(users), accounts=tuple(accounts), deals=tuple(deals))
    now = datetime(2018, 1, 1, tzinfo=UTC)
    out: dict[str, Any] = {"deals": len(deals), "closed_with_account": sum(1 for d in deals if d.is_closed and d.account_id)}
    for loop in (discovery, objections, sequences, icp):
        learned = loop.learn(snap, None, now)
        decisions = loop.decide(snap, learned.state, now)
        out[loop.NAME] = {"proposals": sum(d.kind is ActionKind.PROPOSE_PLAYBOOK_CHANGE for d in decisions),
                          "actions": len(decisions)}
    icp_state = icp.learn(snap, None, now)
    out["icp"].update(drivers=icp_state.metrics["drivers"], cv_auc=round(icp_state.metrics["cv_auc"] or 0, 4))
    return out


