"""The package's shape: no module imports, even from inside a function, a module that imports it
back (directly or through others); the storage layer is only reached through its interface."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "burr_streaming_chatbot"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that ``path`` imports anywhere in it (top level, functions,
    ``TYPE_CHECKING`` blocks): ``from .x import y`` counts as ``x``, or ``x.y`` when ``y`` is a
    module of the package."""
    name = module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                stem = ".".join([*base, *(node.module.split(".") if node.module else [])])
            elif node.module and node.module.startswith("burr_streaming_chatbot"):
                stem = node.module.removeprefix("burr_streaming_chatbot").lstrip(".")
            else:
                continue
            for alias in node.names:
                sub = f"{stem}.{alias.name}" if stem else alias.name
                targets.append(sub if sub in modules else stem)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("burr_streaming_chatbot."):
                    targets.append(alias.name.removeprefix("burr_streaming_chatbot."))
        found.update(t for t in targets if t in modules and t != name)
    return found


def import_graph() -> dict[str, set[str]]:
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(path) for path in files}
    return {module_name(path): imports_of(path, modules) for path in files}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle, each once (as the path from its first module back to it)."""
    found: list[list[str]] = []
    seen: set[frozenset[str]] = set()

    def walk(start: str, node: str, path: list[str]) -> None:
        for after in sorted(graph[node]):
            if after == start:
                if frozenset(path) not in seen:
                    seen.add(frozenset(path))
                    found.append([*path, start])
            elif after not in path and after > start:  # (each cycle from its smallest module)
                walk(start, after, [*path, after])

    for start in sorted(graph):
        walk(start, start, [start])
    return found


def test_no_module_of_the_package_is_part_of_an_import_cycle() -> None:
    graph = import_graph()
    assert "storage.interface" in graph and graph["storage.engines"] >= {
        "storage.sqlite",
        "storage.postgres",
    }
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import(tmp_path: Path) -> None:
    """(The check above can fail: a function-level import back is found.)"""
    (tmp_path / "a.py").write_text("from .b import x\n")
    (tmp_path / "b.py").write_text("def x():\n    from . import a\n    return a\n")
    modules = {"a", "b"}
    global PACKAGE
    saved, PACKAGE = PACKAGE, tmp_path
    try:
        graph = {name: imports_of(tmp_path / f"{name}.py", modules) for name in modules}
    finally:
        PACKAGE = saved
    assert cycles(graph) == [["a", "b", "a"]]


def test_only_the_storage_package_reaches_into_its_engines() -> None:
    """The rest of the code talks to the store through the interface (and opens it with
    ``storage.engines.open_store``), never to an engine or Burr's persister directly."""
    graph = import_graph()
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        if name.startswith("storage"):
            continue
        assert not graph[name] & {"storage.sqlite", "storage.postgres"}, name
        assert ".persister(" not in path.read_text(encoding="utf-8"), f"{name} drives a persister"


def test_tools_reach_the_store_only_through_their_notebook() -> None:
    """``tools.py`` imports only the foundations, and storage never imports it: a tool writes
    through the ``NoteBook`` protocol, which the store implements without knowing tools."""
    graph = import_graph()
    assert graph["tools"] <= {"settings", "wire", "sse"}
    assert [
        name for name, imports in graph.items() if name.startswith("storage") and "tools" in imports
    ] == []


LAYERS = {
    1: ["settings", "wire", "sse"],
    2: ["llm", "errors", "graph", "tools"],
    3: ["storage"],
    4: [
        "lifecycle",
        "conversations",
        "answering",
        "turns",
        "changes",
        "watch",
        "feedback",
        "export",
    ],
    5: ["limits", "service"],
    6: ["guard", "encoders", "router"],
    7: ["plugins", "demo", "_burr_hook", "cli", "__main__", ""],
}
"""The layers of docs/architecture.md (a package stands for its modules; "" is the package)."""


def layer_of(module: str) -> int:
    for layer, names in LAYERS.items():
        if module in names or module.split(".")[0] in names:
            return layer
    raise AssertionError(f"{module!r} is in no layer of docs/architecture.md")


def test_each_module_imports_only_from_its_layer_and_below() -> None:
    upward = [
        f"{name} (layer {layer_of(name)}) imports {imported} (layer {layer_of(imported)})"
        for name, imports in import_graph().items()
        for imported in imports
        if layer_of(imported) > layer_of(name)
    ]
    assert upward == []


def test_the_architecture_page_names_every_module() -> None:
    page = (PACKAGE.parent.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name in ("__init__.py", "__main__.py"):
            continue
        name = path.relative_to(PACKAGE).as_posix()
        assert f"`{path.name}`" in page or f"`{name}`" in page, f"{name} is not on the page"
