"""The SDR -> BDM handoff loop: signals, flags, model, playbook, readout, postmortem; loop.py is the entry."""
