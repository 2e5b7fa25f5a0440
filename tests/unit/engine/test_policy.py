"""Policy: the seed defaults, thresholds, locked rules and the editor's error messages."""

from __future__ import annotations

from decimal import Decimal

import pytest

from crm_adapters.model import Entity
from jobs.engine.policy import (
    Autonomy,
    PolicyError,
    default_rules,
    evaluate,
    load_rules,
    save_rules,
    validate,
)
from jobs.loops.decision import ActionKind, Decision


def decision(kind: ActionKind, amount: str | None = None, stage: str | None = None, loop: str = "deal_risk", **payload) -> Decision:  # type: ignore[no-untyped-def]
    return Decision(loop=loop, kind=kind, target=Entity.DEAL, target_id="1", key=f"k-{kind}", payload=payload,
                    amount=Decimal(amount) if amount else None, stage_id=stage)


@pytest.mark.parametrize("kind, expected", [
    (ActionKind.UPDATE_FIELD, Autonomy.AUTO),
    (ActionKind.UPDATE_CARD, Autonomy.AUTO),
    (ActionKind.DRAFT_EMAIL, Autonomy.DRAFT),
    (ActionKind.OFFER_DISCOUNT, Autonomy.NEEDS_APPROVAL),
    (ActionKind.FLAG_SDR, Autonomy.NEEDS_APPROVAL),
    (ActionKind.PROPOSE_PLAYBOOK_CHANGE, Autonomy.NEEDS_APPROVAL),
    (ActionKind.CHANGE_COMPENSATION, Autonomy.FORBIDDEN),
    (ActionKind.CHANGE_EMPLOYMENT, Autonomy.FORBIDDEN),
])
def test_defaults_give_each_kind_its_autonomy(kind: ActionKind, expected: Autonomy) -> None:
    assert evaluate(default_rules(), decision(kind, amount="5000")).autonomy is expected


def test_send_email_is_autonomous_only_below_1000_mrr() -> None:
    small = evaluate(default_rules(), decision(ActionKind.SEND_EMAIL, amount="11988"))  # 999 MRR
    large = evaluate(default_rules(), decision(ActionKind.SEND_EMAIL, amount="12000"))  # 1000 MRR
    explicit = evaluate(default_rules(), decision(ActionKind.SEND_EMAIL, amount="999999", mrr=500))
    unknown = evaluate(default_rules(), decision(ActionKind.SEND_EMAIL))
    assert small.autonomy is Autonomy.AUTO and small.rule.startswith("send-email-small")
    assert large.autonomy is Autonomy.NEEDS_APPROVAL and large.rule.startswith("send-email-approval")
    assert explicit.autonomy is Autonomy.AUTO
    assert unknown.autonomy is Autonomy.NEEDS_APPROVAL


def test_first_matching_rule_decides_with_stage_and_loop_conditions() -> None:
    rules = [{"id": "late-stage-fields", "action": "update_field", "autonomy": "draft", "when": {"stages": ["104"], "loops": ["deal_risk"]}},
             *default_rules()]
    assert evaluate(rules, decision(ActionKind.UPDATE_FIELD, stage="104")).rule.startswith("late-stage-fields")
    assert evaluate(rules, decision(ActionKind.UPDATE_FIELD, stage="102")).autonomy is Autonomy.AUTO
    assert evaluate(rules, decision(ActionKind.UPDATE_FIELD, stage="104", loop="icp")).autonomy is Autonomy.AUTO


def test_compensation_stays_forbidden_even_when_a_wildcard_says_auto() -> None:
    rules = [{"id": "yolo", "action": "*", "autonomy": "auto"}]
    verdict = evaluate(rules, decision(ActionKind.CHANGE_COMPENSATION))
    assert verdict.autonomy is Autonomy.FORBIDDEN and verdict.rule.startswith("locked-no-compensation")
    assert evaluate(rules, decision(ActionKind.OFFER_DISCOUNT)).autonomy is Autonomy.AUTO


def test_no_matching_rule_falls_back_to_a_person() -> None:
    assert evaluate([], decision(ActionKind.CREATE_TASK)).autonomy is Autonomy.NEEDS_APPROVAL


@pytest.mark.parametrize("rules, message", [
    ([{"id": "x", "action": "change_employment", "autonomy": "auto"}], "rule 1 ('x'): change employment is always forbidden"),
    ([{"id": "ok", "action": "update_field", "autonomy": "auto"}, {"id": "bad", "action": "teleport", "autonomy": "auto"}],
     "rule 2 ('bad'): there is no action 'teleport'"),
    ([{"id": "a", "action": "send_email", "autonomy": "sometimes"}], "rule 1 ('a'): what salesloop may do must be one of"),
    ([{"id": "a", "action": "send_email", "autonomy": "auto", "when": {"mrr_below": "lots"}}], "“MRR below” needs a number of 0 or more"),
    ([{"id": "a", "action": "send_email", "autonomy": "auto", "when": {"weather": 1}}], "there is no condition 'weather'"),
    ([{"id": "a", "action": "send_email", "autonomy": "auto"}, {"id": "a", "action": "flag_sdr", "autonomy": "auto"}], "rule 2 ('a'): duplicate id"),
    ([{"action": "send_email", "autonomy": "auto"}], "rule 1: needs a non-empty id"),
    ({"id": "a"}, "a policy is a list of rules"),
])
def test_invalid_policy_is_refused_naming_the_bad_rule(rules: object, message: str) -> None:
    with pytest.raises(PolicyError) as info:
        validate(rules)
    assert message in str(info.value)


def test_defaults_validate_and_are_seeded_then_saved(store) -> None:  # type: ignore[no-untyped-def]
    from connector.store.tables import Installation

    assert validate(default_rules()) == default_rules()
    with store.session() as s:
        s.add(Installation(id="i1", crm="sandbox", tenant_id="t1", settings={}))
    with store.session() as s:
        assert load_rules(s, "i1") == default_rules()
        save_rules(s, "i1", [{"id": "only", "action": "*", "autonomy": "draft"}], by="user:1")
    with store.session() as s:
        assert load_rules(s, "i1") == [{"id": "only", "action": "*", "autonomy": "draft"}]
        with pytest.raises(PolicyError):
            save_rules(s, "i1", [{"id": "x", "action": "change_compensation", "autonomy": "auto"}], by="user:1")
    with store.session() as s:
        assert load_rules(s, "i1")[0]["id"] == "only"
