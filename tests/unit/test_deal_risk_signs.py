"""Each warning sign fires on a hand-built deal that shows it, with evidence, and not on a healthy one."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from crm_adapters.model import ActivityType, ContactRole, Direction
from crm_adapters.snapshot import Snapshot
from jobs.loops.deal_risk.signs import SIGNS, StageNorms, warning_signs
from tests.factories import T0, a_contact, a_deal, a_pipeline, a_role, a_stage_change, an_activity

NOW = T0 + timedelta(days=40)
NORMS = StageNorms({"103": (10.0, 20.0)})


def healthy(**drop: bool) -> tuple[Snapshot, str, list[object]]:
    """An open deal in Proposal, lively and multi-threaded; `drop` names parts to leave out."""
    deal = a_deal(stage_id="103", created_at=T0, name="Acme - platform")
    champion, buyer = a_contact(first_name="Kim"), a_contact()
    d = deal.remote_id
    records: list[object] = [
        deal, champion, buyer,
        a_role(d, champion.remote_id, ContactRole.CHAMPION),
        a_stage_change(d, "102", T0, exited_at=NOW - timedelta(days=5)),
        a_stage_change(d, "103", NOW - timedelta(days=5)),
        an_activity(ActivityType.EMAIL, d, NOW - timedelta(days=4), contact_ids=(champion.remote_id,)),
        an_activity(ActivityType.EMAIL, d, NOW - timedelta(days=3), direction=Direction.INBOUND, contact_ids=(champion.remote_id,)),
        an_activity(ActivityType.MEETING, d, NOW - timedelta(days=3), outcome="completed", contact_ids=(champion.remote_id, buyer.remote_id)),
        an_activity(ActivityType.MEETING, d, NOW + timedelta(days=5), outcome="scheduled", start_at=NOW + timedelta(days=5)),
        an_activity(ActivityType.EMAIL, d, NOW - timedelta(days=6), custom={"kind": "proposal", "opened": True}),
        an_activity(ActivityType.CALL, d, NOW - timedelta(days=2), transcript="Rep: any risk of delay?\nProspect: No risk of delay, we are on track."),
    ]
    if not drop.get("buyer"):
        records.append(a_role(d, buyer.remote_id, ContactRole.ECONOMIC_BUYER))
    return Snapshot.of(records, [a_pipeline()]), d, records


def signs_of(records: list[object], deal_id: str) -> dict:
    snapshot = Snapshot.of(records, [a_pipeline()])
    return warning_signs(snapshot, snapshot.deal_by_id[deal_id], NOW, NORMS)


def test_a_healthy_deal_fires_no_sign() -> None:
    snapshot, d, _ = healthy()
    signs = warning_signs(snapshot, snapshot.deal_by_id[d], NOW, NORMS)
    assert set(signs) == set(SIGNS)
    assert [c for c, s in signs.items() if s.fired] == []


def _without_recent(records: list[object], days: int) -> list[object]:
    return [r for r in records if not (hasattr(r, "occurred_at") and r.occurred_at > NOW - timedelta(days=days))]  # type: ignore[attr-defined]


def test_no_recent_activity_fires_after_two_silent_weeks() -> None:
    _, d, records = healthy()
    old = an_activity(ActivityType.EMAIL, d, NOW - timedelta(days=25))
    sign = signs_of([*_without_recent(records, 30), old], d)["no_recent_activity"]
    assert sign.fired and "25 days" in sign.evidence


def test_champion_quiet_compares_with_their_usual_latency() -> None:
    _, d, records = healthy()
    champion = next(r for r in records if getattr(r, "role", None) is ContactRole.CHAMPION).contact_id  # type: ignore[attr-defined]
    kept = [r for r in records if getattr(r, "direction", None) is not Direction.INBOUND]
    kept.append(an_activity(ActivityType.EMAIL, d, NOW - timedelta(days=31), contact_ids=(champion,)))
    kept.append(an_activity(ActivityType.EMAIL, d, NOW - timedelta(days=30), direction=Direction.INBOUND, contact_ids=(champion,)))
    sign = signs_of(kept, d)["champion_quiet"]
    assert sign.fired and "Kim" in sign.evidence and "30 days" in sign.evidence and "within 1 day" in sign.evidence


def test_meeting_slipped_fires_on_a_cancelled_meeting() -> None:
    _, d, records = healthy()
    cancelled = an_activity(ActivityType.MEETING, d, NOW - timedelta(days=2), outcome="cancelled")
    sign = signs_of([*records, cancelled], d)["meeting_slipped"]
    assert sign.fired and "cancelled meeting" in sign.evidence


def test_meeting_slipped_fires_when_none_is_held_or_scheduled() -> None:
    _, d, records = healthy()
    kept = [r for r in records if getattr(r, "type", None) is not ActivityType.MEETING]
    sign = signs_of(kept, d)["meeting_slipped"]
    assert sign.fired and "no meeting or connected call in the last 30 days and no meeting scheduled" in sign.evidence


def test_a_connected_call_counts_as_contact_for_meeting_slipped() -> None:
    """The card must not say "no meeting" when the activity list shows a live call the day before."""
    _, d, records = healthy()
    kept = [r for r in records if getattr(r, "type", None) is not ActivityType.MEETING]
    call = an_activity(ActivityType.CALL, d, NOW - timedelta(days=1), outcome="connected", direction=Direction.OUTBOUND)
    assert not signs_of([*kept, call], d)["meeting_slipped"].fired
    missed = an_activity(ActivityType.CALL, d, NOW - timedelta(days=1), outcome="no answer", direction=Direction.OUTBOUND)
    assert signs_of([*kept, missed], d)["meeting_slipped"].fired


def test_close_date_pushed_counts_pushes_known_by_then() -> None:
    _, d, records = healthy()
    pushes = [
        an_activity(ActivityType.NOTE, d, NOW - timedelta(days=20), custom={"kind": "close_date_change", "from": "2026-03-01", "to": "2026-03-31"}),
        an_activity(ActivityType.NOTE, d, NOW - timedelta(days=9), custom={"kind": "close_date_change", "from": "2026-03-31", "to": "2026-04-20"}),
        an_activity(ActivityType.NOTE, d, NOW + timedelta(days=9), custom={"kind": "close_date_change", "from": "2026-04-20", "to": "2026-06-20"}),
    ]
    sign = signs_of([*records, *pushes], d)["close_date_pushed"]
    assert sign.fired and "pushed 2 times, 50 days" in sign.evidence


def test_close_date_history_on_an_open_deal_counts_its_pushes() -> None:
    _, d, records = healthy()
    deal = next(r for r in records if getattr(r, "remote_id", None) == d)
    pushed = replace(deal, custom={"close_date_history": ["2026-03-01", "2026-03-31", "2026-03-20", "2026-04-10"]})
    sign = signs_of([pushed if r is deal else r for r in records], d)["close_date_pushed"]
    assert sign.fired and "pushed 2 times, 51 days" in sign.evidence


def test_stalled_in_stage_compares_with_the_tenant_distribution() -> None:
    _, d, records = healthy()
    kept = [r for r in records if not hasattr(r, "entered_at")]
    kept += [a_stage_change(d, "102", T0, exited_at=NOW - timedelta(days=33)), a_stage_change(d, "103", NOW - timedelta(days=33))]
    sign = signs_of(kept, d)["stalled_in_stage"]
    assert sign.fired and "33 days in Proposal" in sign.evidence and "80% within 20" in sign.evidence


def test_single_threaded_fires_without_an_economic_buyer() -> None:
    snapshot, d, _ = healthy(buyer=True)
    sign = warning_signs(snapshot, snapshot.deal_by_id[d], NOW, NORMS)["single_threaded"]
    assert sign.fired and "no economic buyer" in sign.evidence


def test_proposal_unopened_fires_when_the_proposal_sat_unread() -> None:
    _, d, records = healthy()
    kept = [r for r in records if getattr(r, "custom", {}).get("kind") != "proposal"]
    kept.append(an_activity(ActivityType.EMAIL, d, NOW - timedelta(days=8), custom={"kind": "proposal", "opened": False}))
    sign = signs_of(kept, d)["proposal_unopened"]
    assert sign.fired and "not opened after 8 days" in sign.evidence


@pytest.mark.parametrize(("line", "fires"), [
    ("Prospect: We might delay the rollout to next quarter.", True),
    ("Prospect: There is no risk of delay, we are on track.", False),
    ("Rep: Could the budget freeze delay this?\nProspect: Sounds good, send the paper.", False),
])
def test_risk_language_reads_the_buyer_and_respects_negation(line: str, fires: bool) -> None:
    _, d, records = healthy()
    kept = [r for r in records if getattr(r, "type", None) is not ActivityType.CALL]
    kept.append(an_activity(ActivityType.CALL, d, NOW - timedelta(days=1), transcript=line))
    sign = signs_of(kept, d)["risk_language"]
    assert sign.fired is fires
    if fires:
        assert "delay" in sign.evidence


def test_signs_ignore_what_happened_after_the_moment() -> None:
    _, d, records = healthy()
    late = an_activity(ActivityType.CALL, d, NOW + timedelta(days=3), transcript="Prospect: we will postpone, budget was cut.")
    assert not signs_of([*records, late], d)["risk_language"].fired
