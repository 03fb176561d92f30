"""What serving needs is what `pip install .` installs: every third-party module the
gateway imports is a declared dependency, and none of the test extra is imported."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~ ;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


RUNTIME = {_name(r) for r in PROJECT["dependencies"]}
TEST_ONLY = {_name(r) for r in PROJECT["optional-dependencies"]["test"]} - RUNTIME


def shipped_modules() -> list[str]:
    return sorted(".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
                  for pkg in ("edge", "plugins") for p in (ROOT / pkg).rglob("*.py") if p.name != "__main__.py")


def imported_top_levels() -> set[str]:
    """Top-level names of every module the shipped code imports (at any depth in a file)."""
    out = set()
    for pkg in ("edge", "plugins"):
        for path in (ROOT / pkg).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    out |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    out.add(node.module.split(".")[0])
    return out


def declared_with_extras() -> set[str]:
    """The runtime dependencies, plus what their requested extras pull in (uvicorn[standard]:
    httptools, uvloop, ...): importing one of those is declaring it through the extra."""
    out = set(RUNTIME)
    for requirement in PROJECT["dependencies"]:
        extras = re.search(r"\[([^\]]+)\]", requirement)
        if not extras:
            continue
        wanted = {e.strip() for e in extras.group(1).split(",")}
        for req in importlib.metadata.requires(_name(requirement)) or []:
            if any(re.search(rf"extra\s*==\s*[\"']{re.escape(e)}[\"']", req) for e in wanted):
                out.add(_name(req))
    return out


def test_every_imported_distribution_is_a_declared_dependency() -> None:
    providers = importlib.metadata.packages_distributions()
    declared = declared_with_extras()
    third_party = imported_top_levels() - set(sys.stdlib_module_names) - {"edge", "plugins"}
    undeclared = {}
    for module in sorted(third_party):
        dists = {d.lower().replace("_", "-") for d in providers.get(module, [])}
        assert dists, f"{module} is imported but no installed distribution provides it"
        if not dists & declared:
            undeclared[module] = sorted(dists)
    assert undeclared == {}, f"imported by edge/ or plugins/ but not in [project].dependencies: {undeclared}"


def test_serving_imports_nothing_of_the_test_extra() -> None:
    """Import every shipped module with the test extra's packages made unimportable."""
    blocked = sorted({m for dist in TEST_ONLY for m in _modules_of(dist)})
    assert "httpx" in blocked and "pytest" in blocked
    code = (
        "import importlib, sys\n"
        f"BLOCKED = {blocked!r}\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in BLOCKED:\n"
        "            raise ImportError(f'{name} is test-only')\n"
        "sys.meta_path.insert(0, Block())\n"
        f"for m in {shipped_modules()!r}:\n"
        "    importlib.import_module(m)\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-3000:]


def _modules_of(dist: str) -> set[str]:
    providers = importlib.metadata.packages_distributions()
    return {module for module, dists in providers.items() if dist in {d.lower().replace("_", "-") for d in dists}}
