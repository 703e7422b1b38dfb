"""Imports point inward (README "Architecture"): each layer of ``guardd`` may import only the layers below it.

Every import counts — at module level, inside functions and under ``TYPE_CHECKING`` — because a lazy import is
still a dependency. ``KNOWN`` lists the edges that break the rule today and are being removed (issue 12); the test
fails when a new one appears, and also when a listed one is gone, so that the list only shrinks.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "guardd"

BASE = {"guardd", "guardd.core", "guardd.errors", "guardd.logs", "guardd.config"}
ALLOWED: dict[str, set[str]] = {
    "guardd.core": {"guardd.core"},
    "guardd.errors": set(),
    "guardd.logs": {"guardd.core"},
    "guardd.config": {"guardd.config", "guardd.core", "guardd.errors"},
    "guardd.client_switch": {"guardd.core"},
    "guardd.client_stream": {"guardd.core"},  # the client library's stream wrapping (standard library only)
    "guardd.client": {"guardd.client_stream", "guardd.client_switch", "guardd.core"},
    "guardd.demo": set(),
    "guardd.store": BASE | {"guardd.store"},
    "guardd.adapters": BASE | {"guardd.adapters"},
    "guardd.ledger": BASE | {"guardd.ledger", "guardd.store.api"},
    "guardd.http": BASE | {"guardd.http", "guardd.ledger", "guardd.store.api"},
    "guardd.services": BASE | {"guardd.services", "guardd.adapters", "guardd.ledger", "guardd.store"},
    # The composition root: picks the store backend from the configuration and wires the services over it.
    "guardd.app": BASE | {"guardd.services", "guardd.adapters", "guardd.ledger", "guardd.store"},
    # The CLI starts the daemon (`guardd run`) and may use anything else except a store backend: it opens the
    # store through guardd.app.
    "guardd.cli": BASE
    | {
        "guardd.app",
        "guardd.cli",
        "guardd.daemon",
        "guardd.services",
        "guardd.adapters",
        "guardd.ledger",
        "guardd.http",
        "guardd.store.api",
        "guardd.client_switch",
    },
    "guardd.daemon": BASE
    | {"guardd.app", "guardd.daemon", "guardd.services", "guardd.adapters", "guardd.ledger", "guardd.http"}
    | {"guardd.store.api"},  # the store's backends only through guardd.app
    "guardd.__main__": {"guardd.cli"},
    "guardd": set(),  # the package itself: only its version
}

# Edges that break the rule today (none: the CLI's imports of the SQLite backend went with guardd/app.py).
KNOWN: set[tuple[str, str]] = set()


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str:
    for layer in sorted(ALLOWED, key=len, reverse=True):
        if module == layer or (layer != "guardd" and module.startswith(layer + ".")):
            return layer
    raise AssertionError(f"{module} belongs to no layer: add it to ALLOWED in {__file__}")


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {name for name in found if name == "guardd" or name.startswith("guardd.")}


def is_allowed(target: str, allowed: set[str]) -> bool:
    """``guardd`` in ``allowed`` means the package root itself (its version), not everything below it."""
    return any(target == a or (a != "guardd" and target.startswith(a + ".")) for a in allowed)


def violations() -> set[tuple[str, str]]:
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")}
    found = set()
    for path in PACKAGE.rglob("*.py"):
        source = module_name(path)
        allowed = ALLOWED[layer_of(source)]
        for target in imports_of(path):
            if target not in modules and target.rpartition(".")[0] in modules:
                target = target.rpartition(".")[0]  # `from guardd.x import name`: the module is guardd.x
            if target not in modules or target == source:
                continue
            if not is_allowed(target, allowed):
                found.add((source, target))
    return found


def test_every_module_belongs_to_a_layer():
    for path in PACKAGE.rglob("*.py"):
        layer_of(module_name(path))


def test_imports_point_inward():
    assert violations() - KNOWN == set()


def test_the_list_of_known_exceptions_only_shrinks():
    assert KNOWN - violations() == set()
