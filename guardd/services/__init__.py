"""What guardd does with its state: evaluation, alerts and outbox, OpenRouter work, reports.

Services use :mod:`guardd.core` and the adapters (store, ledger, OpenRouter, notifier); nothing here imports
the daemon or the CLI.
"""
