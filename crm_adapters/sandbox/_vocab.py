"""The shared vocabularies the simulator plants and the NLP and loops look for (ids are a contract)."""

from __future__ import annotations

PAINS: tuple[str, ...] = (
    "manual_reporting",
    "compliance_risk",
    "slow_onboarding",
    "data_silos",
    "cost_pressure",
    "poor_visibility",
    "scaling_limits",
    "security_concerns",
)
MEDDIC: tuple[str, ...] = (
    "metrics",
    "economic_buyer",
    "decision_criteria",
    "decision_process",
    "identify_pain",
    "champion",
)
OBJECTIONS: tuple[str, ...] = ("price", "no_budget", "competitor", "not_priority", "authority", "timing")
QUESTIONS: tuple[str, ...] = (
    "current_process",
    "success_metrics",
    "decision_process",
    "budget_owner",
    "timeline",
    "cost_of_inaction",
    "stakeholders",
    "competing_priorities",
    "technical_requirements",
    "past_attempts",
)
WARNING_SIGNS: tuple[str, ...] = (
    "no_recent_activity",
    "champion_quiet",
    "meeting_slipped",
    "close_date_pushed",
    "stalled_in_stage",
    "single_threaded",
    "proposal_unopened",
    "risk_language",
)
RESPONSES: tuple[str, ...] = (
    "roi_case",
    "discount",
    "defer",
    "find_budget_owner",
    "phased_rollout",
    "differentiate",
    "reference_customer",
    "cost_of_inaction",
    "map_stakeholders",
)
UNDERPERFORMANCE_CAUSES: tuple[str, ...] = ("pain_misalignment", "skips_meddic")
RULE_FIELDS: tuple[str, ...] = ("employees", "annual_revenue", "industry", "country", "lead_source")
RULE_OPS: tuple[str, ...] = ("<", "<=", ">", ">=", "==", "!=", "in", "not_in")

# The one pipeline of the simulated org: (id, label, probability, is_closed, is_won).
STAGES: tuple[tuple[str, str, float, bool, bool], ...] = (
    ("101", "Qualification", 0.1, False, False),
    ("102", "Discovery", 0.2, False, False),
    ("103", "Proposal", 0.5, False, False),
    ("104", "Negotiation", 0.8, False, False),
    ("105", "Closed Won", 1.0, True, True),
    ("106", "Closed Lost", 0.0, True, False),
)
PIPELINE_ID = "1"
WON_STAGE = "105"
LOST_STAGE = "106"
OPEN_STAGES: tuple[str, ...] = ("101", "102", "103", "104")
