"""Command-line tools over the jobs: the demo and its report, the deal-risk backtest and its baselines."""
