"""salesloop: self-improving sales loops that live inside the CRM."""
