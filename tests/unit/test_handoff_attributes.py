"""The handoff model's categorical columns: one reference level per field, unknown as a level, levels
against the rest, interactions only when a score test supports them, one rule per field."""

from __future__ import annotations

import random

import numpy as np

from jobs.loops.handoff.attributes import (
    UNKNOWN,
    Rule,
    code_fields,
    design,
    fit_attributes,
    level_effects,
    propose_rules,
    rule_outcome,
)


def deals(n: int, seed: int = 1, *, interaction: bool = False) -> tuple[list[dict[str, str]], list[bool]]:
    """Budget Yes wins; source Media loses; 'Up-sell' wins only with a champion when `interaction` is on."""
    rnd = random.Random(seed)
    rows, won = [], []
    for _ in range(n):
        row = {"Budget allocated": rnd.choice(["Yes", "No", ""]), "Source": rnd.choice(["Web"] * 3 + ["Media", "Event"]),
               "Champion": rnd.choice(["Yes", "No"]), "Type": rnd.choice(["New", "Up-sell"])}
        logit = -0.4 + (1.0 if row["Budget allocated"] == "Yes" else 0.0) - (1.0 if row["Source"] == "Media" else 0.0)
        if interaction and row["Type"] == "Up-sell" and row["Champion"] == "Yes":
            logit += 1.6
        rows.append(row)
        won.append(rnd.random() < 1 / (1 + np.exp(-logit)))
    return rows, won


def test_a_two_valued_field_gets_one_column_and_empty_is_its_own_level() -> None:
    rows, _ = deals(600)
    codings = {c.field: c for c in code_fields(rows, ["Budget allocated", "Champion", "Type"])}
    assert len(codings["Champion"].levels) == 1 and len(codings["Type"].levels) == 1
    budget = codings["Budget allocated"]
    assert UNKNOWN in (budget.reference, *budget.levels) and len(budget.levels) == 2
    x, names = design(rows, list(codings.values()))
    assert x.shape == (600, 1 + 2 + 1 + 1) and np.linalg.matrix_rank(x) == x.shape[1]  # no complementary columns


def test_rare_levels_pool_into_other_and_a_constant_field_is_dropped() -> None:
    rows = [{"Source": "Web" if i % 10 else f"rare{i}", "Flag": "Yes"} for i in range(300)]
    codings = code_fields(rows, ["Source", "Flag"])
    assert [c.field for c in codings] == ["Source"]
    assert codings[0].reference == "Web" and codings[0].levels == ("other",)
    assert codings[0].level("never seen") == "other"


def test_a_level_is_judged_against_all_other_deals() -> None:
    rows, won = deals(2000)
    codings = code_fields(rows, ["Budget allocated", "Source", "Champion"])
    model = fit_attributes(rows, won, codings)
    effects = {(e.field, e.level): e for e in level_effects(model, rows)}
    media = effects[("Source", "Media")]
    assert media.n_with + media.n_without == 2000 and media.effect < -0.5 and media.z < -4
    assert effects[("Budget allocated", "Yes")].effect > 0.5
    assert abs(effects[("Champion", "Yes")].z) < 3
    assert effects[("Source", "Web")].n_without == 2000 - effects[("Source", "Web")].n_with  # the reference too


def test_rules_are_one_per_field_in_the_crm_labels() -> None:
    rows, won = deals(3000)
    codings = code_fields(rows, ["Budget allocated", "Source", "Champion", "Type"], attributes=["Source", "Type"])
    model = fit_attributes(rows, won, codings)
    rules = [r for r, _ in propose_rules(level_effects(model, rows), codings)]
    fields = [r.field for r in rules]
    assert len(fields) == len(set(fields))
    texts = {r.text for r in rules}
    assert "disqualify Source = Media" in texts
    assert texts & {"require Budget allocated = Yes", "disqualify Budget allocated = No",
                    "disqualify deals where Budget allocated is unknown"}
    assert not any(r.field in ("Champion", "Type") for r in rules)


def test_interactions_enter_only_when_the_data_supports_them() -> None:
    fields = ["Budget allocated", "Source", "Champion", "Type"]
    plain_rows, plain_won = deals(3000, seed=4)
    assert fit_attributes(plain_rows, plain_won, code_fields(plain_rows, fields)).pairs == ()
    rows, won = deals(3000, seed=4, interaction=True)
    pairs = fit_attributes(rows, won, code_fields(rows, fields)).pairs
    assert len(pairs) >= 1 and {pairs[0][0].split("=")[0], pairs[0][1].split("=")[0]} == {"Champion", "Type"}


def test_rule_outcome_compares_deals_that_meet_the_rule_with_the_rest() -> None:
    rows = [{"Source": "Media"}] * 40 + [{"Source": "Web"}] * 60
    won = [False] * 30 + [True] * 10 + [True] * 30 + [False] * 30
    out = rule_outcome(Rule("disqualify", "Source", "Media"), rows, won)
    assert (out["n_meets"], out["wins_meets"], out["n_fails"], out["wins_fails"]) == (60, 30, 40, 10)
    assert out["claimed_sign_held"] is True and out["interval"][0] > 0
    assert Rule("qualify", "Type", "Up-sell").text == "treat Type = Up-sell deals as qualified"
    assert Rule("disqualify", "Budget", UNKNOWN).text == "disqualify deals where Budget is unknown"
