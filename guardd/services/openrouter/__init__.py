"""OpenRouter work: polling, the view budgets use, checks, and switching keys."""
