import ast
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "guardd" / "core"


def test_the_core_imports_only_the_standard_library_and_itself():
    foreign = []
    for path in CORE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top != "guardd" and top not in sys.stdlib_module_names and top != "__future__":
                    foreign.append(f"{path.name}: {name}")
                if name.startswith("guardd.") and not name.startswith("guardd.core"):
                    foreign.append(f"{path.name}: {name}")
    assert foreign == []
