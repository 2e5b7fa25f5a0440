"""The HubSpot adapter: `adapter.HubSpotAdapter` (the CRM port), `oauth` (install and refresh on the
date-versioned OAuth endpoints) and `limiter` (the per-portal request budget, in Redis or in-process)."""
