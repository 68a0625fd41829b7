"""The import graph keeps its floors and its single owners of outside systems (STYLE.md, Where code lives).

Every module of chatapi and the apps is parsed, tests and migrations aside; an import counts wherever
it stands (inside a function, under TYPE_CHECKING), and so does `importlib.import_module("name")`.
A URLconf's `include("app.urls")` and settings' dotted names are not imports: Django resolves them.
"""

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Bottom up: each may import its own floor and those below, never one above.
FLOORS = ["chatapi", "usage_app", "sessions_app", "chat_app", "notifications_app", "staff_app"]
# An outside package, and the modules (a file, or a folder ending in "/") allowed to import it.
OWNERS = {
    "litellm": "chat_app/llm.py",
    "openai": "chat_app/llm.py",  # litellm's own client, whose stream it reads
    "discord": "notifications_app/",
    "aiohttp": "notifications_app/",  # discord.py's transport
}
# Modules that hold no HTTP objects: DRF stays in api.py, authentication, permissions and the like.
WITHOUT_DRF = {"models", "services", "selectors"}


@dataclass(frozen=True)
class Import:
    path: str  # the importing file, from the project's root
    line: int
    name: str  # the module imported, absolute and dotted

    def __str__(self) -> str:
        return f"{self.path}:{self.line} imports {self.name}"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def absolute(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    """`from ..x import y` as the absolute name it reaches, seen from module `importer`."""
    if not node.level:
        return node.module or ""
    package = importer.split(".") if is_package else importer.split(".")[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def imports_in(source: str, path: str, importer: str, is_package: bool = False) -> Iterator[Import]:
    for node in ast.walk(ast.parse(source, filename=path)):
        if isinstance(node, ast.Import):
            yield from (Import(path, node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = absolute(node, importer, is_package)
            yield Import(path, node.lineno, module)
            if node.level and not node.module:  # `from . import views`: each name is a module
                yield from (Import(path, node.lineno, f"{module}.{alias.name}") for alias in node.names)
        elif isinstance(node, ast.Call) and _is_import_call(node):
            yield Import(path, node.lineno, node.args[0].value)


def _is_import_call(node: ast.Call) -> bool:
    called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
    named = node.args[0] if node.args else None
    return called in {"import_module", "__import__"} and isinstance(named, ast.Constant) and type(named.value) is str


def project_files() -> list[Path]:
    files = []
    for package in FLOORS:
        for path in sorted((ROOT / package).rglob("*.py")):
            if not {"tests", "migrations"} & set(path.relative_to(ROOT).parts):
                files.append(path)
    return files


def project_imports() -> list[Import]:
    found = []
    for path in project_files():
        relative = str(path.relative_to(ROOT))
        found += imports_in(path.read_text(), relative, module_name(path), path.name == "__init__.py")
    return found


@pytest.fixture(scope="module")
def graph() -> list[Import]:
    return project_imports()


def floor_of(package: str) -> int:
    """A project package's floor, counted from 0 (chatapi); -1 for what is no floor (Django, the standard library)."""
    return FLOORS.index(package) if package in FLOORS else -1


def test_no_module_imports_a_module_of_a_higher_floor(graph):
    upward = [
        f"{found}: {imported} stands above {importer}"
        for found in graph
        for importer, imported in [(found.path.split("/")[0], found.name.split(".")[0])]
        if floor_of(imported) > floor_of(importer)
    ]

    assert not upward, "\n".join(upward)


@pytest.mark.parametrize("package", sorted(OWNERS))
def test_an_outside_package_is_imported_by_its_owner_alone(graph, package):
    owner = OWNERS[package]
    strays = [
        f"{found}: only {owner} may import {package}"
        for found in graph
        if found.name.split(".")[0] == package and not found.path.startswith(owner)
    ]

    assert not strays, "\n".join(strays)


def test_models_services_and_selectors_never_import_rest_framework(graph):
    strays = [
        f"{found}: DRF belongs in api.py, not in {found.path}"
        for found in graph
        if found.name.split(".")[0] == "rest_framework" and WITHOUT_DRF & set(Path(found.path).with_suffix("").parts)
    ]

    assert not strays, "\n".join(strays)


# --- The walk itself: it must see what it judges.


def test_every_app_stands_on_a_floor():
    apps = {path.parent.name for path in ROOT.glob("*/apps.py")}

    assert apps <= set(FLOORS), f"place {sorted(apps - set(FLOORS))} on a floor in FLOORS"


def test_the_walk_sees_imports_inside_functions(graph):
    seen = {(found.path, found.name) for found in graph}

    assert len(project_files()) > 40
    assert ("chat_app/llm.py", "litellm") in seen  # imported inside a function
    assert ("notifications_app/discord.py", "discord") in seen
    assert ("staff_app/admin.py", "sessions_app.services") in seen


@pytest.mark.parametrize(
    ("source", "importer", "is_package", "expected"),
    [
        ("from . import views", "shop.urls", False, ["shop", "shop.views"]),
        ("from .models import Order", "shop.api", False, ["shop.models"]),
        ("from ..core import rules", "shop.orders.api", False, ["shop.core"]),
        ("from .api import Orders", "shop.orders", True, ["shop.orders.api"]),
        ("def f():\n    import litellm", "shop.llm", False, ["litellm"]),
        ("importlib.import_module('discord.http')", "shop.bot", False, ["discord.http"]),
    ],
)
def test_imports_in_resolves_relative_imports(source, importer, is_package, expected):
    assert [found.name for found in imports_in(source, "x.py", importer, is_package)] == expected
