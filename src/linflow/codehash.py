"""Which source files a command runs, and their hash: the workflow's rerun trigger for code.

Snakemake reruns a job when its params change but does not look at the Python modules a
command imports. Each rule therefore passes :func:`stage_hash` of its command as a param. The
modules are found, not listed: starting from the command's module (and the entry points every
command goes through: the package ``__init__``, ``__main__``, ``cli`` and ``commands``), every
``import`` of a linflow module anywhere in a module (top level or inside a function) is
followed. The package's lazy public attribute ``linflow.open_sweep`` is named by a string, not
an import, so reading sweeps is not part of every command; the tests check that what a command
really imports at run time is inside what is found here.
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PACKAGE = PACKAGE_DIR.name
ENTRY_MODULES = (PACKAGE, f"{PACKAGE}.__main__", f"{PACKAGE}.cli", f"{PACKAGE}.commands")


def module_file(module: str, root: Path = PACKAGE_DIR) -> Path | None:
    """The source file of ``linflow.a.b`` under ``root`` (a module or a package), or None."""
    parts = module.split(".")[1:]
    base = root.joinpath(*parts)
    for candidate in (base.with_suffix(".py") if parts else None, base / "__init__.py"):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


def _parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def imports(module: str, root: Path = PACKAGE_DIR) -> set[str]:
    """linflow modules that ``module``'s source imports (anywhere in it), with their parent packages."""
    path = module_file(module, root)
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # "from . import x" may import the submodule x, or an attribute of the package.
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] == PACKAGE and module_file(name, root) is not None:
                found.update(p for p in _parents(name) if module_file(p, root) is not None)
    found.discard(module)
    return found


def closure(modules, root: Path = PACKAGE_DIR) -> list[str]:
    """``modules`` and every linflow module they import, transitively (sorted)."""
    seen, todo = set(), list(modules)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo.extend(imports(module, root) - seen)
    return sorted(seen)


def stage_modules(command_module: str, root: Path = PACKAGE_DIR) -> list[str]:
    """The modules a ``linflow <command>`` process can run (``command_module``: e.g.
    ``linflow.commands.chunk``)."""
    return closure(ENTRY_MODULES + (command_module,), root)


#: Keyword arguments that only document (argparse help, a parameter's doc): not what code does.
DOC_KEYWORDS = ("help", "doc", "description")


class _WithoutDocumentation(ast.NodeTransformer):
    """Drops docstrings, documentation arguments and the ``doc`` of the parameter registry's
    ``_p(name, type, doc, block, ...)`` entries; comments and layout are not in the AST."""

    def _body(self, node):
        self.generic_visit(node)
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
        return node

    visit_Module = visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _body

    def visit_Call(self, node):
        self.generic_visit(node)
        node.keywords = [k for k in node.keywords if k.arg not in DOC_KEYWORDS]
        if isinstance(node.func, ast.Name) and node.func.id == "_p" and len(node.args) >= 3:
            node.args[2] = ast.Constant("")
        return node


def normalized_source(path: Path) -> str:
    """What a module does, as text: its AST without docstrings, comments, layout and
    documentation strings (:class:`_WithoutDocumentation`), so editing those reruns nothing."""
    tree = _WithoutDocumentation().visit(ast.parse(path.read_text(), str(path)))
    return ast.dump(tree, annotate_fields=False, include_attributes=False)


def stage_hash(command_module: str, root: Path = PACKAGE_DIR) -> str:
    """SHA-256 (16 hex digits) of the normalized sources (:func:`normalized_source`) of
    :func:`stage_modules`."""
    digest = hashlib.sha256()
    for module in stage_modules(command_module, root):
        digest.update(f"{module}\0".encode())
        digest.update(normalized_source(module_file(module, root)).encode())
    return digest.hexdigest()[:16]
