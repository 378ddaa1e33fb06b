"""The package's layout rules, checked on the source: no import cycle between modules (imports inside functions
count too: they only hide a cycle), web/ imports nothing from daemon/, and the commands reach the daemon only
through its services (no `svc.a.b.c` chains)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "tha4bridge"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """module → the package modules it imports anywhere in its file (`from . import x` counts as x)."""
    modules = {_module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                mod = (f"{base}.{node.module}" if node.module else base) if node.level else node.module or ""
                targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in modules else mod for a in node.names]
            for t in targets:
                while t and t not in modules:
                    t = t.rpartition(".")[0]
                if t and t != name:
                    found.add(t)
        graph[name] = found
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _without_package_inits(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """A package's __init__ re-exporting its own modules is not a cycle of concerns: drop the edges from a
    module to the __init__ of a package that contains it."""
    return {m: {t for t in ts if not m.startswith(t + ".")} for m, ts in graph.items()}


def test_no_import_cycles_even_inside_functions():
    cycles = _cycles(_without_package_inits(_imports()))
    assert not cycles, "import cycles (imports inside functions included): " + "; ".join(
        " ↔ ".join(c) for c in cycles)


def test_web_imports_nothing_from_the_daemon():
    graph = _imports()
    web = {m: sorted(t for t in ts if t.startswith("tha4bridge.daemon"))
           for m, ts in graph.items() if m.startswith("tha4bridge.web")}
    assert not any(web.values()), f"web/ modules importing daemon/: { {m: t for m, t in web.items() if t} }"


@pytest.mark.parametrize("module", ["commands.py", "layer_commands.py", "table.py"])
def test_commands_use_the_services_not_the_daemons_parts(module):
    text = (ROOT / "daemon" / module).read_text()
    chains = re.findall(r"\b(?:svc|ctx)\.\w+\.\w+\.\w+", text)
    assert not chains, f"daemon/{module} reaches through the services: {chains[:5]}"
    assert "ctx." not in text and "registry" not in text and "scheduler" not in text
