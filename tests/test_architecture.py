"""The layers import downwards only, and no module imports itself back through others.

Read from the source with ``ast`` (function-level imports included), so a late import cannot hide
an arrow that goes the wrong way. The layers, lowest first (ARCHITECTURE.md):

    schemas → pipeline → models → benchmarks / research;  scripts, widget on pipeline (+ models)

Inside ``pipeline`` the Beam-free core (text, dedup logic, the classifier runtime, policy, display,
timestamps, signing) never imports the stages, and the stages never import the graph builders or
the launcher.
"""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path
from typing import Dict, Set

from tests.conftest import ROOT

TOP = ("schemas", "pipeline", "models", "benchmarks", "research", "scripts", "widget")
# what each top-level layer may import (besides itself)
ALLOWED = {
    "schemas": set(),
    "pipeline": {"schemas"},
    "models": {"pipeline", "schemas"},
    "benchmarks": {"models", "pipeline", "schemas"},
    "research": {"benchmarks", "models", "pipeline", "schemas"},
    "scripts": {"models", "pipeline", "schemas"},
    "widget": {"pipeline", "schemas"},
}
CORE = ("pipeline.text", "pipeline.behaviour", "pipeline.dedup.clusters", "pipeline.dedup.shingles", "pipeline.dedup.signatures",
        "pipeline.dedup.config", "pipeline.classifier", "pipeline.policy", "pipeline.display",
        "pipeline.timestamps", "pipeline.signing", "pipeline.files", "pipeline.context")
GRAPH = ("pipeline.build", "pipeline.stream", "pipeline.run", "pipeline.options")
PURE = ("pipeline.display", "pipeline.behaviour", "pipeline.timestamps", "pipeline.classifier", "pipeline.text", "pipeline.signing",
        "pipeline.files", "pipeline.policy", "pipeline.dedup.clusters", "pipeline.dedup.shingles",
        "pipeline.dedup.signatures")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> Dict[str, Path]:
    return {module_name(p): p for top in TOP for p in (ROOT / top).rglob("*.py")}


def imports_of(path: Path, name: str, known: Set[str]) -> Set[str]:
    """First-party modules ``path`` imports (``from pkg import mod`` counts as ``pkg.mod``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            for a in node.names:
                found.add(f"{base}.{a.name}" if f"{base}.{a.name}" in known else base)
    return {m for m in found if m.split(".")[0] in TOP and m in known}


def graph() -> Dict[str, Set[str]]:
    mods = modules()
    return {name: imports_of(path, name, set(mods)) - {name} for name, path in mods.items()}


def within(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_layers_import_downwards_only():
    wrong = [f"{a} → {b}" for a, deps in graph().items() for b in deps
             if b.split(".")[0] != a.split(".")[0] and b.split(".")[0] not in ALLOWED[a.split(".")[0]]]
    assert not wrong, "imports from a lower layer to a higher one:\n" + "\n".join(sorted(wrong))


def test_pipeline_core_never_imports_stages_and_stages_never_import_the_graph():
    wrong = []
    for a, deps in graph().items():
        for b in deps:
            if within(a, CORE) and within(b, ("pipeline.transforms", "pipeline.io", "pipeline.local") + GRAPH):
                wrong.append(f"{a} → {b}")
            if within(a, ("pipeline.transforms", "pipeline.io")) and within(b, GRAPH):
                wrong.append(f"{a} → {b}")
            if within(a, ("widget",)) and within(b, ("pipeline.transforms", "pipeline.io") + GRAPH):
                wrong.append(f"{a} → {b} (the widget server imports pure functions only)")
    assert not wrong, "\n".join(sorted(wrong))


def test_pure_modules_use_no_beam_transforms():
    """The Beam-free core may use Beam's FileSystems (local and gs:// paths) but nothing else of Beam."""
    wrong = []
    for name, path in modules().items():
        if not within(name, PURE):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            mods = ([a.name for a in node.names] if isinstance(node, ast.Import)
                    else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            wrong += [f"{name} imports {m}" for m in mods
                      if m.startswith("apache_beam") and not m.startswith(("apache_beam.io.filesystem",))]
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles():
    g = graph()
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def strongconnect(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in g.get(v, ()):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in list(g):
        if v not in index:
            strongconnect(v)
    assert not cycles, f"import cycles: {cycles}"


def test_the_checker_sees_a_wrong_arrow_and_a_cycle(tmp_path, monkeypatch):
    """The checks above can fail: a planted upward import and a planted cycle are both found."""
    for rel, text in {"schemas/__init__.py": "", "schemas/x.py": "from pipeline import y\n",
                      "pipeline/__init__.py": "", "pipeline/y.py": "def f():\n    from schemas import x\n"}.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", tmp_path)
    g = graph()
    assert g["schemas.x"] == {"pipeline.y"} and g["pipeline.y"] == {"schemas.x"}
    for check in (test_layers_import_downwards_only, test_no_import_cycles):
        try:
            check()
        except AssertionError:
            continue
        raise AssertionError(f"{check.__name__} missed the planted case")


def test_no_sys_path_hacks_and_no_pointers_outside_the_repository():
    """Tools run as modules (``python -m``), and code states its facts in place (no ../shared docs)."""
    bad = defaultdict(list)
    for name, path in modules().items():
        text = path.read_text(encoding="utf-8")
        if "sys.path.insert" in text or "sys.path.append" in text:
            bad["sys.path"].append(name)
        if "ENGINEERING.md" in text or "STYLE.md" in text:
            bad["../shared docs"].append(name)
    assert not bad, dict(bad)


def test_readme_layout_names_every_part_of_the_tree():
    """The README's layout block names every top-level entry, every part of pipeline/ and every
    file of benchmarks/, research/ and scripts/ (the tree as it is, not as it was)."""
    import subprocess
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Layout", 1)[1].split("```", 2)[1]
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    if not tracked:   # not a git checkout (an sdist): list the files instead
        tracked = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file()]
    top = {t.split("/")[0] for t in tracked} - {".gitignore", "README.md", "pytest.ini"}
    names = {t + ("/" if any(x.startswith(t + "/") for x in tracked) else "") for t in top}
    names |= {Path(t).parts[1] + ("/" if len(Path(t).parts) > 2 else "") for t in tracked
              if t.startswith("pipeline/") and Path(t).name != "__init__.py"}
    names |= {Path(t).name for t in tracked if t.split("/")[0] in ("benchmarks", "research", "scripts")
              and t.endswith(".py") and Path(t).name != "__init__.py"}
    missing = sorted(n for n in names if n.rstrip("/") not in block)
    assert not missing, f"README layout does not mention: {missing}"
