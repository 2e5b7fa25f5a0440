"""Phrase banks: several ways to say each concept, so finding them takes NLP, not a lookup."""

from __future__ import annotations

# How an SDR writes a pain the prospect stated (third person, note style).
PAIN_NOTE: dict[str, tuple[str, ...]] = {
    "manual_reporting": (
        "they build their reports by hand in spreadsheets",
        "month-end reporting is a manual slog",
        "someone spends two days a week stitching reports together",
        "reporting is all copy-paste from exports",
        "reports are put together manually every Friday",
    ),
    "compliance_risk": (
        "they are worried about failing the next audit",
        "compliance is a real exposure for them",
        "regulators keep asking questions they can't answer",
        "the audit trail is patchy and legal is nervous",
        "they got a finding from the auditors last year",
    ),
    "slow_onboarding": (
        "new hires take months to ramp",
        "onboarding new customers drags on for weeks",
        "getting people productive takes forever",
        "ramp time for new staff is way too long",
    ),
    "data_silos": (
        "data lives in five systems that don't talk to each other",
        "every team keeps its own copy of the numbers",
        "nobody trusts a single source of truth",
        "information is scattered across tools",
    ),
    "cost_pressure": (
        "they are under pressure to cut costs this year",
        "the CFO wants spend down fifteen percent",
        "budgets are being squeezed everywhere",
        "everything is being judged on cost savings",
    ),
    "poor_visibility": (
        "leadership can't see what is happening in the pipeline",
        "there is no visibility into team performance",
        "they are flying blind on forecasts",
        "managers have no real view of what reps are doing",
    ),
    "scaling_limits": (
        "the current setup won't survive next year's growth",
        "their tools are breaking as they grow",
        "they hit the ceiling of what the current system can handle",
        "the old platform can't keep up with volume",
    ),
    "security_concerns": (
        "the security team has concerns about where data lives",
        "they had a security incident last year",
        "infosec reviews every vendor very closely",
        "data protection is top of mind after a breach scare",
    ),
}

# How a prospect says it on a call (first person).
PAIN_SPOKEN: dict[str, tuple[str, ...]] = {
    "manual_reporting": (
        "We still build every report by hand in Excel.",
        "Honestly, month-end reporting eats two days of my team's time.",
        "All our reporting is copy-paste from exports, it's painful.",
    ),
    "compliance_risk": (
        "We're nervous about the next audit, to be frank.",
        "Compliance is a big worry, the regulator has been asking questions.",
        "Our audit trail is patchy and legal keeps flagging it.",
    ),
    "slow_onboarding": (
        "It takes new people three months to get up to speed.",
        "Onboarding a new customer takes us weeks longer than it should.",
        "Ramp time for new hires is killing us.",
    ),
    "data_silos": (
        "Our data sits in five different tools and none of them talk.",
        "Every team has its own numbers, nobody agrees on anything.",
        "We don't have a single source of truth.",
    ),
    "cost_pressure": (
        "We've been told to cut costs across the board this year.",
        "Our CFO wants spend down, so every euro is questioned.",
        "Budgets are really tight right now.",
    ),
    "poor_visibility": (
        "I can't see what's going on in the pipeline until it's too late.",
        "Leadership has no visibility into how the team is doing.",
        "We're basically flying blind on the forecast.",
    ),
    "scaling_limits": (
        "What we have now won't cope with next year's growth.",
        "Our current system is creaking as we scale.",
        "We've outgrown the tools we have.",
    ),
    "security_concerns": (
        "Security is a big deal for us after last year's incident.",
        "Our infosec team is very strict about where data lives.",
        "We need to be sure the data is protected.",
    ),
}

# A pain the prospect explicitly does not have (negation).
PAIN_ABSENT: dict[str, tuple[str, ...]] = {
    "manual_reporting": ("reporting is not a problem for them", "they don't struggle with reporting"),
    "compliance_risk": ("compliance isn't a concern", "they are not worried about audits"),
    "slow_onboarding": ("onboarding is fine", "ramp time is not an issue"),
    "data_silos": ("their data is already in one place", "no issue with data silos"),
    "cost_pressure": ("budget is not an issue", "they are not under cost pressure"),
    "poor_visibility": ("they have good visibility already", "reporting visibility is not a gap"),
    "scaling_limits": ("scale isn't a worry for now", "the current system copes fine"),
    "security_concerns": ("security isn't really a concern for them", "no security worries raised"),
}

MEDDIC_YES: dict[str, tuple[str, ...]] = {
    "metrics": (
        "they want to cut reporting time by half",
        "success = 20% faster close by Q4",
        "clear target: save 10 hours a week per manager",
        "metrics agreed, they track time-to-report",
    ),
    "economic_buyer": (
        "the CFO signs off and she is aware of this project",
        "budget is not an issue, the VP Finance owns it and is on board",
        "EB identified: the COO holds the budget",
        "spoke to the budget holder, who is supportive",
    ),
    "decision_criteria": (
        "they'll judge on integrations and ease of use",
        "decision criteria: price, security review, time to value",
        "they shared their evaluation checklist",
    ),
    "decision_process": (
        "process is security review, then legal, about six weeks",
        "they buy through procurement after a pilot",
        "decision process mapped: committee meets monthly",
    ),
    "identify_pain": (
        "pain is clear and urgent",
        "pain is well understood and quantified",
        "they described the problem in detail",
    ),
    "champion": (
        "our contact is keen and will push this internally",
        "strong champion, she sold it to her boss already",
        "champion in place and motivated",
    ),
}

MEDDIC_NO: dict[str, tuple[str, ...]] = {
    "metrics": ("no clear metrics yet", "didn't get to success numbers", "no KPIs discussed"),
    "economic_buyer": (
        "there is no budget identified yet",
        "don't know who signs off",
        "economic buyer unknown",
        "no access to the budget holder so far",
    ),
    "decision_criteria": ("criteria unclear", "not sure how they will evaluate"),
    "decision_process": ("no idea how they buy yet", "buying process not discussed"),
    "identify_pain": ("pain feels vague", "not sure the pain is real"),
    "champion": ("no champion yet", "contact is lukewarm", "nobody inside is really pushing this"),
}

QUESTION: dict[str, tuple[str, ...]] = {
    "current_process": (
        "How do you handle this today?",
        "Can you walk me through your current process?",
        "What does the workflow look like right now?",
    ),
    "success_metrics": (
        "How would you measure success here?",
        "What numbers would tell you this worked?",
        "Which KPI are you trying to move?",
    ),
    "decision_process": (
        "What are the steps from here to a signed contract?",
        "How do decisions like this usually get made on your side?",
        "What does your buying process look like?",
    ),
    "budget_owner": (
        "Who owns the budget for this?",
        "Whose budget would this come out of?",
        "Who signs off on spend like this?",
    ),
    "timeline": (
        "When do you need this in place?",
        "What's your timeline?",
        "Is there a date driving this?",
    ),
    "cost_of_inaction": (
        "What happens if you don't fix this?",
        "What does it cost you to leave things as they are?",
        "If nothing changes in six months, what's the impact?",
    ),
    "stakeholders": (
        "Who else is affected by this?",
        "Which other teams should be part of the conversation?",
        "Who else would need to weigh in?",
    ),
    "competing_priorities": (
        "What else is competing for attention right now?",
        "Where does this rank against your other projects?",
        "What other initiatives are on the go this quarter?",
    ),
    "technical_requirements": (
        "What systems would this need to integrate with?",
        "Any technical requirements we should know about?",
        "What does your tech stack look like?",
    ),
    "past_attempts": (
        "Have you tried to solve this before?",
        "What did you try already, and why didn't it stick?",
        "Have you used other tools for this in the past?",
    ),
}

ANSWER: tuple[str, ...] = (
    "Good question. Let me think.",
    "It's a mix, honestly.",
    "I'd have to check with the team, but roughly that's it.",
    "Hard to say exactly.",
    "That's something we've been discussing internally.",
    "Mostly it's ad hoc, to be honest.",
    "I can get you more detail on that.",
)

OBJECTION: dict[str, tuple[str, ...]] = {
    "price": (
        "Honestly, this looks expensive compared to what we budgeted.",
        "The price is higher than we expected.",
        "That's a lot more than we pay today.",
    ),
    "no_budget": (
        "We don't have budget for this this year.",
        "There's no budget allocated for it right now.",
        "Budget is frozen until next fiscal year.",
    ),
    "competitor": (
        "We're also looking at another vendor.",
        "We already use a competitor for part of this.",
        "Another provider offered us something similar.",
    ),
    "not_priority": (
        "To be honest it's not a priority right now.",
        "We have bigger fires to put out.",
        "This is more of a nice-to-have for us.",
    ),
    "authority": (
        "I'd need to run this by my boss.",
        "I'm not the one who makes this call.",
        "This would need sign-off above me.",
    ),
    "timing": (
        "The timing isn't great, we're in the middle of a migration.",
        "Can we revisit this in the third quarter?",
        "We can't start anything before the new year.",
    ),
}

RESPONSE: dict[str, tuple[str, ...]] = {
    "roi_case": (
        "Let's put numbers on it: if we save your team ten hours a week, it pays for itself in four months.",
        "I can build an ROI case with your own figures so you can weigh it against the cost.",
        "Fair. Let's work out the return together before we talk price.",
    ),
    "discount": (
        "I can offer fifteen percent off if you sign this month.",
        "Let me see if I can get you a discount.",
        "We could do a special price for a two-year term.",
    ),
    "defer": (
        "No problem, let's reconnect in a few months.",
        "Understood, I'll follow up later in the year.",
        "Okay, I'll leave it with you for now.",
    ),
    "find_budget_owner": (
        "Who would own the budget for a project like this? Could we bring them in?",
        "Would it help if we spoke to finance together?",
        "Is there someone who controls discretionary spend we could talk to?",
    ),
    "phased_rollout": (
        "We could start with one team and expand later, which keeps the first phase small.",
        "A phased rollout would spread the cost across quarters.",
        "What if we begin with a pilot and grow from there?",
    ),
    "differentiate": (
        "Here's where we're different: we connect to your existing systems out of the box.",
        "Compared to them, we go live in weeks, not months.",
        "The key difference is the audit trail, which they don't have.",
    ),
    "reference_customer": (
        "A customer of ours in your space had the same concern; happy to connect you.",
        "I can share a case study from a company like yours.",
        "Would a call with one of our customers help?",
    ),
    "cost_of_inaction": (
        "What does it cost you every month this stays unsolved?",
        "If this waits a year, how much does the manual work add up to?",
        "Let's look at what doing nothing costs you.",
    ),
    "map_stakeholders": (
        "Let's map who needs to be involved and what each of them cares about.",
        "Could we set up a call with your manager and walk through it together?",
        "Who else should see this, and what would they need from us?",
    ),
}

HEDGES: tuple[str, ...] = (
    "I think ",
    "probably ",
    "seems like ",
    "not 100% sure but ",
    "if I understood right, ",
)

RISK_LANGUAGE: tuple[str, ...] = (
    "We need to put this on hold while leadership reconsiders priorities.",
    "Budget is under review again, so things may slip.",
    "I'm not sure we can move forward this quarter.",
    "Our new VP wants to re-evaluate all vendors, sorry.",
    "There's been a reorg and this is now uncertain.",
)

CHECK_IN: tuple[str, ...] = (
    "Just checking in on the proposal, any thoughts?",
    "Following up on my last note, happy to answer questions.",
    "Wanted to make sure this didn't get lost in your inbox.",
    "Any update on your side?",
)

REPLY_OK: tuple[str, ...] = (
    "Thanks, sharing with the team and will come back to you.",
    "Looks good so far, let's keep the next meeting.",
    "Appreciate it, we're reviewing internally.",
    "Thanks for the detail, a couple of questions below.",
)

LOSS_REASONS: dict[str, str] = {
    "price": "Price",
    "no_budget": "No budget",
    "competitor": "Went with a competitor",
    "not_priority": "No decision / not a priority",
    "authority": "Could not reach decision maker",
    "timing": "Timing",
}

SEQUENCE_SUBJECT: dict[str, tuple[str, ...]] = {
    "A": ("Quick question about {company}", "Idea for {company}", "{first}, a thought"),
    "B": (
        "How teams like {company} cut reporting time",
        "{company} + faster reporting?",
        "Saw this and thought of you",
    ),
}

SEQUENCE_BODY: tuple[str, ...] = (
    "Hi {first}, teams like yours lose hours every week to manual reporting. Worth a 20-minute chat?",
    "Hi {first}, following up in case this is relevant for {company}. Open to a quick call?",
    "Hi {first}, last note from me: should I reach out to someone else at {company}?",
)

POSITIVE_REPLY: tuple[str, ...] = (
    "Sure, let's talk next week.",
    "Interesting, send me a few times.",
    "OK, happy to chat.",
)
NEGATIVE_REPLY: tuple[str, ...] = (
    "Not interested, please remove me.",
    "We're all set, thanks.",
    "Not the right time.",
)
