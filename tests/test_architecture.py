"""The package's shape: no import cycle anywhere (imports inside functions included), a registry that imports
nothing else of rqvqa, every model family in one folder, and identities that agree everywhere."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import REPO

from rqvqa.errors import ConfigError

PACKAGE = REPO / "src" / "rqvqa"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _type_checking_only(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Inside `if TYPE_CHECKING:` (annotations only: never run)."""
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def import_graph() -> dict[str, set[str]]:
    """module -> the rqvqa modules it imports, at any depth of its code (module level, functions, methods),
    `if TYPE_CHECKING:` blocks left out. `from a import b` is an edge to `a.b` when that is a module, else to
    `a`."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(tree):
            if _type_checking_only(node, parents):
                continue
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name in modules}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], base])
                    base = base.rstrip(".")
                if not base.startswith("rqvqa"):
                    continue
                for alias in node.names:
                    target = f"{base}.{alias.name}"
                    edges.add(target if target in modules else base)
        graph[name] = {e for e in edges if e != name and e in modules}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_import_graph_sees_function_level_imports():
    graph = import_graph()
    # `Predictor.predict_many` imports the pipeline inside the method: the graph must hold that edge
    assert "rqvqa.pipeline.engines" in graph["rqvqa.predictor"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_anywhere_in_the_package():
    assert cycles(import_graph()) == []


def test_the_registry_imports_nothing_else_of_rqvqa():
    assert import_graph()["rqvqa.registry"] == set()


def test_every_family_lives_in_its_own_folder():
    from rqvqa.registry import FAMILIES, REGISTRY

    assert all(f.startswith("rqvqa.families.") for f in FAMILIES)
    for card in REGISTRY.models():
        assert card.predictor.startswith(f"rqvqa.families.{card.family}."), card
        assert REGISTRY.model_class(card.name).__module__.startswith(f"rqvqa.families.{card.family}.")
    for card in REGISTRY.sources():
        assert card.source.startswith(f"rqvqa.families.{card.family}."), card
    # no predictor or source class outside the families (the base classes aside)
    graph = import_graph()
    for module, path in _modules().items():
        if module.startswith("rqvqa.families."):
            continue
        text = path.read_text(encoding="utf-8")
        assert "(Predictor):" not in text or module == "rqvqa.predictor", module
        assert "(CheckpointSource):" not in text, module
    # a family package's declarations import nothing but the registry and other families' declarations
    for family in FAMILIES:
        assert all(e == "rqvqa.registry" or e in FAMILIES for e in graph[family]), (family, graph[family])


# ------------------------------------------------------------------------------------------------ identity


def test_an_option_a_model_would_ignore_is_refused():
    from rqvqa.api import create_predictor

    with pytest.raises(ConfigError, match="model 'lite' does not take weights"):
        create_predictor("lite", weights="/nonexistent/x")
    with pytest.raises(ConfigError, match="does not take device"):
        create_predictor("brisque", device="cuda")


def test_the_card_is_what_runs_and_rows_carry_it(small_video):
    from rqvqa.api import create_predictor
    from rqvqa.pipeline import score_video

    for name, options in (("lite", {}), ("niqe", {"max_frames": 1})):
        predictor = create_predictor(name, **options)
        card = predictor.card
        with pytest.raises(TypeError):
            card.options["max_frames"] = 7  # frozen: what runs cannot drift from what is recorded
        row = score_video(predictor, small_video)
        assert (row["model"], row["weights"], row["options"]) == (card.name, "packaged", dict(card.options))
        assert row["lower_better"] is card.lower_better
    assert create_predictor("niqe", max_frames=1).card.options == {"max_frames": 1}
    assert create_predictor("lite").card.options == {"features": "videval-light480"}
