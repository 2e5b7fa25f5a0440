"""The deal-risk loop: features, warning signs, the risk model and its evaluation; loop.py is the entry."""
