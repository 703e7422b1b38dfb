"""How configuration problems are worded: one line per problem, naming the file and the key's path
(``guardd.toml: budgets[1].daily: must be greater than 0``; list indexes count from 0), and the checks that look
across sections. Plain data in, lines out: no pydantic here (its errors arrive as the dicts of
``ValidationError.errors()``).
"""

from __future__ import annotations

import os
from typing import Any


def loc(parts: tuple[int | str, ...]) -> str:
    """A pydantic error location as the user wrote the key: ``budgets[1].daily``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith(("function-", "literal[", "tagged-union")) or part in {"bool", "float", "int", "str"}:
            continue  # pydantic's union branch names are noise to a user
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def message(error: dict[str, Any]) -> str:
    """A pydantic error's message in guardd's words."""
    msg = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return "unknown key (check the spelling; see config.example.toml)"
    if error["type"] == "missing":
        return "is required"
    if error["type"] == "literal_error":
        return msg.replace("Input should be", "must be")
    return msg


def openrouter_missing(needs: list[str], section: object) -> str | None:
    """The problem of budgets whose source needs ``[openrouter]`` when it is absent, else None."""
    if needs and section is None:
        return f"budget(s) {', '.join(needs)} use source openrouter/max but [openrouter] is absent"
    return None


def cross_checks_raw(data: dict[str, Any], label: str) -> list[str]:
    """The cross-section checks on the raw (not validated) data, skipping whatever is too malformed to judge."""
    problems: list[str] = []
    notifiers = data.get("notifiers", [])
    if isinstance(notifiers, list) and all(isinstance(n, dict) for n in notifiers):
        tags = [n.get("tags", []) for n in notifiers]
        if all(isinstance(t, list) for t in tags):
            problems += unknown_tags({str(tag) for t in tags for tag in t}, data, label)
    budgets = data.get("budgets")
    if isinstance(budgets, list) and not any(k.lower().startswith("guardd_openrouter") for k in os.environ):
        needs = [
            str(b.get("name"))
            for b in budgets
            if isinstance(b, dict) and b.get("source", "ledger") in ("openrouter", "max")
        ]
        problem = openrouter_missing(needs, data.get("openrouter"))
        if problem:
            problems.append(f"{label}: {loc(())}: {problem}")
    return problems


def unknown_tags(carried: set[str], data: dict[str, Any], label: str) -> list[str]:
    """Report every ``notify`` tag that no notifier carries: such alerts would reach nobody (contract §1).

    ``carried`` is every notifier's tags; ``data`` the settings as plain data (raw or dumped)."""
    problems: list[str] = []
    for section in ("budgets", "health"):
        items = data.get(section)
        for index, item in enumerate(items if isinstance(items, list) else []):
            notify = item.get("notify") if isinstance(item, dict) else None
            for tag in notify if isinstance(notify, list) else []:
                if tag not in carried:
                    known = ", ".join(sorted(carried)) or "no notifier has tags"
                    where = f"{label}: {section}[{index}].notify"
                    problems.append(f"{where}: no notifier carries the tag {tag!r} ({known})")
    return problems


def duplicate_names(data: dict[str, Any], label: str) -> list[str]:
    """Report repeated budget (and health rule) names from the raw data, so they show even when another key is
    also bad."""
    problems: list[str] = []
    for section in ("budgets", "health"):
        entries = data.get(section)
        if not isinstance(entries, list):
            continue
        first: dict[str, int] = {}
        for index, entry in enumerate(entries):
            name = entry.get("name") if isinstance(entry, dict) else None
            if isinstance(name, str) and name in first:
                problems.append(
                    f"{label}: {section}[{index}].name: {name!r} is already the name of {section}[{first[name]}]"
                )
            elif isinstance(name, str):
                first[name] = index
    return problems
