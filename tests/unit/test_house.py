"""The house as drawn (ARCHITECTURE.md, "Rules of the house"), checked on the source itself.

- No import circle between modules of ``gateway/``. Every import counts: at module level, inside
  functions, and under ``if TYPE_CHECKING:`` too (a circle of annotations is still two modules
  that each need the other; none exists, so none is excused).
- The actors' rooms (registry, repository, imaging, consumer, xca, fhir, media) never import
  each other:
  they meet through client interfaces wired in the assembly (``app.py``, ``cli.py``, ``demo.py``,
  and ``serving/worker.py``, which runs one gateway of ``serve --workers N``; these may import
  everything). One documented exception, module by module (``ALLOWED``): ``media`` exports
  through the consumer's fetch (ARCHITECTURE.md: media uses "consumer fetch"), so it may import
  the fetch and the destination interface it fills. It reaches the imaging source and the
  registry's patients only through Protocols the assembly satisfies, importing nothing of them.
- Actors never import lxml: XML lives in ``soap/`` and the ``metadata/`` codecs.

The imports are read from the syntax tree (``ast``), nothing is imported or executed.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import gateway

PACKAGE = Path(gateway.__file__).resolve().parent
ACTOR_ROOMS = (
    "registry",
    "repository",
    "imaging",
    "consumer",
    "xca",
    "fhir",
    "media",
    "dicomweb",
    "ui",
    "notify",
    "consent",  # patient consent (IHE BPPC): plain callables of the registry, never its modules
)
# room -> modules of other rooms it may import (each a public interface, named one by one)
ALLOWED = {
    "media": {
        "gateway.consumer.fetch",  # StudyFetcher, FetchRequest, FetchReport
        "gateway.consumer.store",  # Destination, DicomdirDestination, PermanentProblem
        "gateway.consumer.manifest",  # InstanceRef, what a destination is handed
        "gateway.consumer.settings",  # ConsumerSettings, the fetch's peers
    },
}
ASSEMBLY = (
    "gateway.app",
    "gateway.cli",
    "gateway.demo",
    "gateway.demo_communities",
    "gateway.__main__",
    "gateway.serving.worker",
)


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ["gateway", *path.relative_to(PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


MODULES = _modules()


def _imported(name: str, path: Path) -> Iterator[tuple[str, int]]:
    """Every name ``module`` imports (absolute), with its line: ``from a.b import c`` gives
    ``a.b.c`` when that is a module, else ``a.b``."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                yield (full if full in MODULES else base), node.lineno


def _graph() -> dict[str, set[str]]:
    return {
        name: {target for target, _ in _imported(name, path) if target in MODULES} - {name}
        for name, path in MODULES.items()
    }


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def _room(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[1] in ACTOR_ROOMS else None


def test_the_checker_sees_a_circle_and_relative_imports() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
    graph = _graph()
    assert "gateway.soap.ns" in graph["gateway.soap.transactions"]
    assert "gateway.hl7.er7" in graph["gateway.hl7.ack"]


def test_no_import_circle_in_gateway() -> None:
    assert _cycles(_graph()) == []


def test_actor_rooms_never_import_each_other() -> None:
    crossings = [
        f"{name}:{line} imports {target}"
        for name, path in MODULES.items()
        if name not in ASSEMBLY and (room := _room(name)) is not None
        for target, line in _imported(name, path)
        if (other := _room(target)) is not None
        and other != room
        and target not in ALLOWED.get(room, set())
    ]
    assert crossings == []


def test_the_allowed_crossings_are_used_and_lead_nowhere_else() -> None:
    used = {
        target
        for name, path in MODULES.items()
        if _room(name) == "media"
        for target, _ in _imported(name, path)
        if _room(target) not in (None, "media")
    }
    assert used == ALLOWED["media"]
    # and nothing of the others imports media (consumer must not depend on de-identification)
    assert not [
        name
        for name, path in MODULES.items()
        if _room(name) not in (None, "media") and name not in ASSEMBLY
        for target, _ in _imported(name, path)
        if _room(target) == "media"
    ]


def test_only_assembly_imports_the_assembly() -> None:
    users = [
        f"{name}:{line} imports {target}"
        for name, path in MODULES.items()
        if name not in ASSEMBLY
        for target, line in _imported(name, path)
        if target in ASSEMBLY
    ]
    assert users == []


def test_actors_do_not_import_lxml() -> None:
    users = [
        f"{name}:{line}"
        for name, path in MODULES.items()
        if _room(name) is not None
        for target, line in _imported(name, path)
        if target == "lxml" or target.startswith("lxml.")
    ]
    assert users == []
