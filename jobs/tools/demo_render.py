"""The demo's summary in the terminal: plain headers, one number format, and what to do next."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from connector.store.tables import OutboxKind, OutboxStatus, ProposalStatus
from jobs.loops import labels, registry

RECORDS = {"pipeline": "Pipelines", "user": "Users", "account": "Accounts", "contact": "Contacts", "deal": "Deals",
           "deal_contact_role": "Contact roles on deals", "stage_change": "Stage changes",
           "activity": "Activities (calls, emails, meetings, notes)"}
WRITES = {OutboxKind.FIELD: "Fields set on records", OutboxKind.TASK: "Tasks for people", OutboxKind.NOTE: "Notes on deals",
          OutboxKind.TASK_CLOSE: "Tasks closed"}
STATUSES = {OutboxStatus.SENT: "written", OutboxStatus.PENDING: "waiting", OutboxStatus.FAILED: "failed, will retry",
            OutboxStatus.DEAD: "gave up"}


def step_words(name: str) -> str:
    """A chain step as the progress bars name it."""
    if name.startswith("record "):
        loop = name.removeprefix("record ")
        return f"Recording {labels.phrase(registry.title(loop))}"
    return {"approvals": "Reading approvals back", "loops: learn and decide": "Learning and deciding (every loop)",
            "write-back": "Writing back into the CRM", "drift": "Checking the models for drift"}.get(name, name.replace("_", " "))


def n(value: Any) -> str:
    """Every count in the summary the same way: thousands separated by commas."""
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


BUDGET = {"digests_per_rep_per_day": "{} morning digest(s) per rep a day",
          "approvals_per_manager_per_week": "{} approval task(s) per manager a week",
          "icp_digests_per_lead_per_week": "{} ICP digest(s) per SDR lead a week",
          "icp_accounts_per_digest": "{} accounts per ICP digest",
          "spot_checks_per_manager_per_week": "{} spot-check digest(s) per manager a week",
          "spot_check_items": "{} items per spot check",
          "other_tasks_per_person_per_day": "{} other task(s) per person a day"}


def budget_words(budget: dict[str, Any]) -> str:
    """The attention budget in words, each cap with its unit; a setting this build does not know is named as set."""
    return ", ".join(BUDGET.get(key, key.replace("_", " ") + ": {}").format(value) for key, value in budget.items())


def secs(value: float) -> str:
    return f"{value:,.1f}"


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right", no_wrap=i == 0)
    return table


def render(console: Console, result: dict[str, Any], *, port: int, serving: bool = False) -> None:
    """The summary an admin reads in one pass, top to bottom: read, decided, written, waiting, where to look."""
    chain, store = result["chain"], result["store"]
    console.rule(f"[bold]salesloop demo: {result.get('org_name', result['tenant_id'])} (seed {result['seed']})")
    read = _table("Read from the sandbox CRM", "Records", "Count")
    for entity, count in chain.get("synced", {}).items():
        read.add_row(RECORDS.get(entity, entity.replace("_", " ").capitalize()), n(count))
    read.add_row("Set aside as malformed", n(store["quarantined"]))
    console.print(read)
    stages = _table("Win rate by stage reached (closed deals)", "Stage", "Reached", "Closed", "Won", "Win rate")
    for row in result["stage_win_rates"]:
        rate = f"{row['win_rate']:.0%}" if row["win_rate"] is not None else "none closed"
        stages.add_row(row["stage"], n(row["reached"]), n(row["closed"]), n(row["won"]), rate)
    console.print(stages)
    _risk(console, store.get("risk_levels", {}))
    _loops(console, chain)
    _writes(console, store, result.get("tasks_per_person"))
    _waiting(console, store["proposals"], port)
    seconds = result["seconds"]
    console.print()
    console.print(f"Done in {secs(seconds['total'])} s (simulating the org {secs(seconds['simulate'])} s, loading the CRM "
                  f"{secs(seconds['sandbox_crm'])} s, salesloop's run {secs(seconds['chain'])} s).")
    if serving:
        console.print(f"[bold]Open the pages:[/bold] http://127.0.0.1:{port}/ in a browser (starting now).")
    else:
        console.print(f"[bold]Open the pages:[/bold] run `salesloop demo --serve` (the same demo, then its pages) and open "
                      f"http://127.0.0.1:{port}/ in a browser.")


def _risk(console: Console, levels: dict[str, int]) -> None:
    total = sum(levels.values())
    table = _table("Open deals by risk level", "Risk level", "Deals", "Share")
    for level, count in levels.items():
        table.add_row(level.capitalize(), n(count), f"{count / total:.0%}" if total else "none")
    table.add_row("All scored open deals", n(total), "100%" if total else "none")
    console.print(table)


def _loops(console: Console, chain: dict[str, Any]) -> None:
    if not chain.get("loops"):
        console.print("[yellow]No loops are registered in this build: only the sync and the stage summary ran.[/yellow]")
        return
    table = _table("What each loop decided", "Loop", "Decisions", "Alone", "To a manager", "Stopped", "For review",
                   "Proposals", "Seconds")
    table.caption = ("Alone: written without asking. To a manager: drafts and changes that need approval. Stopped: not "
                     "allowed by the policy or failed the quality check. For review: written alone, then sampled for a "
                     "manager's spot check.")
    table.caption_justify = "left"
    for name, loop in chain["loops"].items():
        autonomy, gate = loop["autonomy"], loop["gate"]
        table.add_row(registry.title(name), n(loop["decisions"]), n(autonomy.get("auto", 0)),
                      n(autonomy.get("draft", 0) + autonomy.get("needs_approval", 0)),
                      n(autonomy.get("forbidden", 0) + gate.get("blocked", 0)), n(gate.get("spot_check", 0)),
                      n(loop["proposals"]), secs(loop["seconds"]))
    console.print(table)


def _writes(console: Console, store: dict[str, Any], per_person: dict[str, Any] | None) -> None:
    table = _table("Written back into the sandbox CRM", "What", "Count")
    for key, count in sorted(store["outbox"].items()):
        kind, _, status = key.partition(":")
        table.add_row(f"{WRITES.get(kind, kind.replace('_', ' ').capitalize())}, {STATUSES.get(status, status)}", n(count))
    levels = store.get("risk_levels", {})
    scored = sum(levels.values())
    table.add_row("Deal cards: risk and next move on open deals", n(scored))
    table.add_row("Deal cards: post-mortems of closed deals", n(max(store["cards"] - scored, 0)))
    console.print(table)
    if per_person and per_person.get("person_days"):
        busiest = f" ({per_person['busiest']})" if per_person.get("busiest") else ""
        line = (f"Tasks per person per day: median {n(per_person['median'])}, most {n(per_person['max'])}{busiest}, "
                f"over {n(per_person['people'])} people")
        console.print(line + ".", highlight=False)
        if per_person.get("budget"):
            console.print(f"Attention budget per person: {budget_words(per_person['budget'])}.", highlight=False)


def _waiting(console: Console, proposals: list[dict[str, Any]], port: int) -> None:
    pending = [p for p in proposals if p["status"] == ProposalStatus.PENDING]
    changes = [p for p in pending if p.get("type") != "spot_check"]
    reviews = [p for p in pending if p.get("type") == "spot_check"]
    console.print()
    console.print(f"[bold]Waiting for a manager's approval: {n(len(changes))} proposed changes, "
                  f"{n(len(reviews))} spot checks[/bold]")
    for i, p in enumerate(changes, 1):
        console.print(f"  {i}. {registry.title(p['loop'])}: {p['title']}", highlight=False, markup=False)
    if pending:
        console.print(f"  Approve or reject them as a manager would, in the sandbox CRM's “My tasks” page "
                      f"(http://127.0.0.1:{port}/sandbox/tasks), or on salesloop's Approvals page.")
