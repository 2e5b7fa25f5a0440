"""The one vocabulary: identifiers become words with units; the plain-words check catches what it must."""

from __future__ import annotations

from datetime import UTC, date, datetime

from jobs.loops import labels


def test_identifiers_become_words() -> None:
    assert [labels.word(w) for w in ("roi_case", "cost_of_inaction", "icp", "economic_buyer", "no_budget")] == [
        "ROI case", "Cost of inaction", "ICP", "Economic buyer", "No budget"]
    assert labels.phrase("roi_case") == "ROI case" and labels.phrase("economic_buyer") == "economic buyer"


def test_segments_and_signals_read_as_sentences() -> None:
    assert labels.segment("employee_band=<50") == "fewer than 50 employees"
    assert labels.segment("employee_band=5000+") == "5,000 or more employees"
    assert labels.segment("industry=healthcare") == "industry Healthcare"
    assert labels.segment("revenue_band=10M-100M") == "annual revenue 10M to 100M"
    assert labels.segment("country=de") == "country DE" and labels.segment("industry=unknown") == "industry not recorded"
    assert labels.signal("employees:500-1999") == "500 to 1,999 employees"
    assert labels.signal("pain:cost_pressure") == "stated pain: cost pressure"
    assert labels.signal("meddic:economic_buyer") == "MEDDIC economic buyer recorded"


def test_numbers_carry_units_and_dates_are_readable() -> None:
    assert (labels.days(1), labels.days(3.4), labels.count(1, "deal"), labels.count(1200, "deal")) == (
        "1 day", "3 days", "1 deal", "1,200 deals")
    assert labels.when(datetime(2026, 12, 4, 23, 0, tzinfo=UTC)) == "4 Dec 2026" and labels.when(date(2026, 1, 5)) == "5 Jan 2026"
    assert labels.when("2026-01-05T00:00:00+00:00") == "5 Jan 2026"
    assert labels.win_chance(0.18, 0.41, "deals in Discovery") == "Win chance 18%, typical for deals in Discovery 41%"


def test_a_bounded_list_ends_with_how_many_more_wait() -> None:
    lines = [f"- line {i} " + "x" * 90 for i in range(50)]
    text = labels.bounded(lines, 1000, "{n} more: see the field.")
    assert len(text) <= 1000 and text.endswith("more: see the field.")
    shown = text.count("- line ")
    assert text.endswith(f"{50 - shown} more: see the field.")
    assert labels.bounded(lines[:2], 1000, "{n} more") == "\n".join(lines[:2])


def test_the_plain_words_check() -> None:
    assert labels.plain_problems("stage=Discovery; usually replies within 3") == ["key=value 'stage=Discovery'"]
    assert labels.plain_problems("see https://app.example/admin/audit?gate_verdict=spot_check") == []
    assert labels.plain_problems("scored 2026-01-05T00:00:00+00:00") and labels.plain_problems("the amount_precision")
