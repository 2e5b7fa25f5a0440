"""`salesloop demo` end to end, as a user runs it: a fresh SALESLOOP_HOME, a small org, one JSON object."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from crm_adapters.model import Entity
from crm_adapters.sandbox import SandboxCrm
from crm_adapters.writes import AppField

ROOT = Path(__file__).resolve().parents[2]


def _demo(home: Path, *args: str, **env: str) -> dict:  # type: ignore[type-arg]
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    proc = subprocess.run([sys.executable, "-m", "connector.cli", "demo", "--deals", "150", "--seed", "5", "--json", *args],
                          cwd=ROOT, env={**clean, "SALESLOOP_HOME": str(home), **env}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout[-2000:]
    return json.loads(lines[0])  # type: ignore[no-any-return]


def test_demo_syncs_runs_every_loop_and_writes_back_into_the_sandbox(tmp_path: Path) -> None:
    result = _demo(tmp_path)
    assert result["mode"] == "in-process"
    chain = result["chain"]
    assert chain["status"] == "done"
    assert chain["synced"]["deal"] == result["crm_records"]["deals"]
    assert chain["synced"]["activity"] == result["crm_records"]["activities"]
    from jobs.loops.registry import all_loops

    assert set(chain["loops"]) == set(all_loops())
    assert all(loop["version"] == "v1" for loop in chain["loops"].values())
    stages = {row["stage"]: row for row in result["stage_win_rates"]}
    assert stages["Closed Won"]["win_rate"] == 1.0 and stages["Closed Lost"]["win_rate"] == 0.0
    assert 0 < stages["Qualification"]["win_rate"] < stages["Negotiation"]["win_rate"] < 1
    sent = result["store"]["outbox"]
    assert sent.get("field:sent", 0) > 0 and not any(k.endswith((":failed", ":dead", ":pending")) for k in sent)
    crm = SandboxCrm.open(f"sqlite:///{tmp_path / 'sandbox-crm.db'}", result["tenant_id"])
    assert len(crm.list_tasks()) == sent.get("task:sent", 0)  # each task the outbox sent is in the CRM, once
    risk = [crm.field_value(Entity.DEAL, row["target_id"], AppField.RISK_SCORE) for row in _field_decisions(tmp_path, "deal_risk")[:20]]
    assert risk and all(isinstance(v, int | float) for v in risk)


def _field_decisions(home: Path, loop: str) -> list[dict]:  # type: ignore[type-arg]
    from sqlalchemy import select

    from connector.store import Store
    from connector.store.tables import DecisionRecord

    store = Store.connect(f"sqlite:///{home / 'salesloop.db'}", upgrade=False)
    with store.session() as s:
        rows = s.execute(select(DecisionRecord.target_id).where(DecisionRecord.loop == loop, DecisionRecord.kind == "update_field",
                                                                DecisionRecord.write_status == "written")).all()
    return [{"target_id": r.target_id} for r in rows]


@pytest.mark.redis
def test_demo_goes_through_rq_and_a_worker_when_redis_is_set(tmp_path: Path, redis_url: str, redis_conn) -> None:  # type: ignore[no-untyped-def]
    result = _demo(tmp_path, REDIS_URL=redis_url, TESTING="1")
    assert result["mode"] == "rq"
    assert result["chain"]["status"] == "done" and result["chain"]["loops"]
    assert result["store"]["outbox"].get("field:sent", 0) > 0


def test_the_summary_reads_in_one_pass_with_plain_headers_and_where_to_go_next(tmp_path: Path) -> None:
    import re

    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    proc = subprocess.run([sys.executable, "-m", "connector.cli", "demo", "--deals", "150", "--seed", "5"], cwd=ROOT,
                          env={**clean, "SALESLOOP_HOME": str(tmp_path), "COLUMNS": "100"}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    for header in ("Read from the sandbox CRM", "Open deals by risk level", "What each loop decided",
                   "Written back into the sandbox CRM", "Waiting for a manager's approval", "Tasks per person per day"):
        assert header in out, header
    assert not re.search(r"\bprops\b|\bforbid\b|deal_risk|\bicp\b", out)  # no abbreviations, no identifiers as headers
    assert not re.search(r"(?<![\d,.:-])\d{4,}(?![\d-])", out)  # every count past 999 has its thousands separator
    levels = {m.group(1): int(m.group(2).replace(",", "")) for m in re.finditer(r"^ (High|Medium|Low) +([\d,]+)", out, re.M)}
    total = int(re.search(r"All scored open deals +([\d,]+)", out).group(1).replace(",", ""))
    assert set(levels) == {"High", "Medium", "Low"} and sum(levels.values()) == total > 0
    assert "http://127.0.0.1:8765/sandbox/tasks" in out and out.rstrip().endswith("in a browser.")
    assert "salesloop demo --serve" in out
