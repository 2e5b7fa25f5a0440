"""What the pipeline (jobs.engine) and the approval flow (jobs.approvals) both keep per tenant, below both:
the outbox of CRM writes (a sender per kind, one key builder), loop state versions, the attention budget,
a loop's pause."""
