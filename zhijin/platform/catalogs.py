"""The catalogs' sources: what `make catalogs` extracts, and every problem code the code raises.

Two kinds of msgid reach the "messages" catalog:

- literal calls, `gettext(locale, "notice.transfer_received", ...)` and `N_("...")`, found by
  Babel's own Python extractor;
- one `problem.<code>` template per stable problem code, found by reading the source (its
  syntax tree, not by importing it): the `code = "..."` of every ZhijinError or EdgeProblem
  subclass, the literal code of every call that raises one, the members of each domain's
  `Code` enum, the codes the chain records for a failed transaction (`TxOutcome(code=...)`),
  and the platform's edge problems (`problem(status, "code", ...)`, `_HTTP_CODES`).

`extract_messages` is a Babel extraction method (named in babel-messages.cfg) that yields both,
so `pybabel extract` keeps every template in the catalog and `pybabel update` never marks one
obsolete.  The catalog tests use `scan_codes` to check that every code has a template in every
locale that names only params the code's raise sites pass.
"""

from __future__ import annotations

import ast
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from babel.messages.extract import extract_python

__all__ = [
    "PACKAGE_DIR",
    "PROBLEM_PREFIX",
    "CodeScan",
    "CodeSite",
    "extract_messages",
    "problem_msgid",
    "scan_codes",
]

PACKAGE_DIR = Path(__file__).resolve().parents[1]
PROBLEM_PREFIX = "problem."
_ERROR_ROOTS = frozenset({"ZhijinError", "EdgeProblem"})
_CODE_ENUM = "Code"  # each domain's enum of contract result codes (payments/codes.py)
_NOT_A_PROBLEM = frozenset({"ok"})  # Code.OK is success, never a problem


def problem_msgid(code: str) -> str:
    return PROBLEM_PREFIX + code


@dataclass(frozen=True, slots=True)
class CodeSite:
    """One place that can produce `code`: the detail names it passes (None: not knowable)."""

    code: str
    path: str
    line: int
    params: frozenset[str] | None


@dataclass(slots=True)
class CodeScan:
    sites: dict[str, list[CodeSite]] = field(default_factory=dict)
    # Raises whose code is an expression (a code carried over from a tx result, a variable):
    # their codes come from the sites that first produced them, which the scan does find.
    passthrough: list[str] = field(default_factory=list)

    def add(self, site: CodeSite) -> None:
        if site.code not in _NOT_A_PROBLEM:
            self.sites.setdefault(site.code, []).append(site)

    def params_carried(self, code: str) -> frozenset[str] | None:
        """The detail names every literal raise site of `code` passes (None: no site says)."""
        known = [s.params for s in self.sites.get(code, ()) if s.params is not None]
        if not known:
            return None
        return frozenset.intersection(*known)


def scan_codes(root: Path = PACKAGE_DIR) -> CodeScan:
    """Every problem code the package under `root` can raise, with where and with what."""
    trees = {
        path: ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for path in sorted(root.rglob("*.py"))
    }
    errors = _error_classes(trees.values())
    constants = _constants(trees.values())
    scan = CodeScan()
    for path, tree in trees.items():
        for site in _sites(tree, errors, constants, _relative(path, root), scan.passthrough):
            scan.add(site)
    return scan


def _relative(path: Path, root: Path) -> str:
    return str(path.relative_to(root.parent))


def _error_classes(trees: Collection[ast.Module]) -> dict[str, str | None]:
    """Error class name -> its own `code` (None when it inherits one), by name across files."""
    bases: dict[str, list[str]] = {}
    own_code: dict[str, str | None] = {}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases[node.name] = [_name(base) for base in node.bases]
                own_code[node.name] = _class_code(node)
    found: dict[str, str | None] = {}
    changed = True
    while changed:  # a fixed point over the class graph; each pass adds at least one class
        changed = False
        for name, parents in bases.items():
            if name not in found and any(p in _ERROR_ROOTS or p in found for p in parents):
                found[name] = own_code[name]
                changed = True
    for root_name in _ERROR_ROOTS:
        found.setdefault(root_name, own_code.get(root_name))
    return found


def _constants(trees: Collection[ast.Module]) -> dict[str, str]:
    """Module-level `NAME = "text"` constants and `Code.MEMBER`s, by name across the package:
    a code raised as `service.TRANSFER_ID_TAKEN` or `Code.ACCOUNT_CLOSED.value` is a literal."""
    found: dict[str, str] = {}
    for tree in trees:
        for statement in tree.body:
            if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
                target, text = statement.targets[0], _literal(statement.value)
                if isinstance(target, ast.Name) and target.id.isupper() and text is not None:
                    found[target.id] = text
            elif isinstance(statement, ast.ClassDef) and _is_code_enum(statement):
                for member in statement.body:
                    if isinstance(member, ast.Assign) and isinstance(member.targets[0], ast.Name):
                        text = _literal(member.value)
                        if text is not None:
                            found[f"{_CODE_ENUM}.{member.targets[0].id}"] = text
    return found


def _is_code_enum(node: ast.ClassDef) -> bool:
    return node.name == _CODE_ENUM and any(_name(b) == "StrEnum" for b in node.bases)


def _code_of(node: ast.expr | None, constants: Mapping[str, str]) -> str | None:
    """A code argument's text if the source fixes it: a literal, a constant, a Code member."""
    if node is None:
        return None
    text = _literal(node)
    if text is not None:
        return text
    if isinstance(node, ast.Attribute) and node.attr == "value":
        node = node.value  # Code.X.value
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        if node.value.id in (_CODE_ENUM, "C"):  # payments/codes.py aliases C = Code
            return constants.get(f"{_CODE_ENUM}.{node.attr}")
        return constants.get(node.attr)  # module.CONSTANT
    return None


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def _class_code(node: ast.ClassDef) -> str | None:
    for statement in node.body:
        target: ast.expr | None = None
        value: ast.expr | None = None
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target, value = statement.targets[0], statement.value
        elif isinstance(statement, ast.AnnAssign):
            target, value = statement.target, statement.value
        if isinstance(target, ast.Name) and target.id == "code" and _literal(value) is not None:
            return _literal(value)
    return None


def _literal(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _sites(
    tree: ast.Module,
    errors: Mapping[str, str | None],
    constants: Mapping[str, str],
    path: str,
    passthrough: list[str],
) -> Iterator[CodeSite]:
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            yield from _class_sites(node, errors, constants, path)
        elif isinstance(node, ast.Call):
            yield from _call_sites(node, errors, constants, path, passthrough)
        elif isinstance(node, ast.Assign) and _is_http_codes(node):
            assert isinstance(node.value, ast.Dict)
            for value in node.value.values:
                code = _literal(value)
                if code is not None:
                    yield CodeSite(code, path, node.lineno, frozenset())


def _is_http_codes(node: ast.Assign) -> bool:
    return (
        len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id == "_HTTP_CODES"
        and isinstance(node.value, ast.Dict)
    )


def _class_sites(
    node: ast.ClassDef, errors: Mapping[str, str | None], constants: Mapping[str, str], path: str
) -> Iterator[CodeSite]:
    own = errors.get(node.name)
    if own is not None:
        # A definition is no raise: it says nothing of the details its raises pass.
        yield CodeSite(own, path, node.lineno, None)
    if _is_code_enum(node):
        for statement in node.body:
            if isinstance(statement, ast.Assign):
                code = _literal(statement.value)
                if code is not None:
                    # A tx result keeps no details; the error that reports it may add some.
                    yield CodeSite(code, path, statement.lineno, None)
    if node.name in errors:
        yield from _derived_sites(node, constants, path)


def _derived_sites(
    node: ast.ClassDef, constants: Mapping[str, str], path: str
) -> Iterator[CodeSite]:
    """An error class's `DERIVED_DETAILS = {Code.X.value: ("name", ...)}`: the details its
    constructor adds to every error of that code."""
    for statement in node.body:
        if not isinstance(statement, ast.AnnAssign | ast.Assign):
            continue
        target = statement.target if isinstance(statement, ast.AnnAssign) else statement.targets[0]
        if not (isinstance(target, ast.Name) and target.id == "DERIVED_DETAILS"):
            continue
        assert isinstance(statement.value, ast.Dict), f"{path}: DERIVED_DETAILS is a dict literal"
        for key, value in zip(statement.value.keys, statement.value.values, strict=True):
            code = _code_of(key, constants)
            assert code is not None and isinstance(value, ast.Tuple), path
            names = frozenset(_literal(element) or "" for element in value.elts)
            yield CodeSite(code, path, statement.lineno, names)


# Callables that take a problem code, and the position of the code among their arguments.
_CODE_POSITION = {"EdgeProblem": 1, "problem": 1, "localized_problem": 2}


def _call_sites(
    node: ast.Call,
    errors: Mapping[str, str | None],
    constants: Mapping[str, str],
    path: str,
    passthrough: list[str],
) -> Iterator[CodeSite]:
    callee = _name(node.func)
    keywords = {k.arg: k.value for k in node.keywords if k.arg is not None}
    spread = any(k.arg is None for k in node.keywords)
    params = None if spread else frozenset(k for k in keywords if k not in ("code", "message"))
    if callee == "TxOutcome":  # a failed tx's result keeps its code and message, nothing else
        code = _code_of(keywords.get("code"), constants)
        if code is not None:
            yield CodeSite(code, path, node.lineno, frozenset())
        return
    if callee not in errors and callee not in _CODE_POSITION:
        return
    position = _CODE_POSITION.get(callee, 0)
    code_node = keywords.get("code")
    if code_node is None and len(node.args) > position:
        code_node = node.args[position]
    if code_node is None:
        inherited = errors.get(callee)
        if inherited is not None:
            yield CodeSite(inherited, path, node.lineno, params)
        return
    code = _code_of(code_node, constants)
    if code is None:
        passthrough.append(f"{path}:{node.lineno}")
        return
    yield CodeSite(code, path, node.lineno, params)


def extract_messages(
    fileobj: IO[bytes],
    keywords: Mapping[str, Any],
    comment_tags: Collection[str],
    options: Any,
) -> Iterator[tuple[Any, ...]]:
    """Babel extraction method: the file's literal gettext calls, then its problem codes."""
    yield from extract_python(fileobj, keywords, comment_tags, options)
    fileobj.seek(0)
    tree = ast.parse(fileobj.read())
    errors, constants, classes = _package_names()
    if any(isinstance(node, ast.ClassDef) and node.name not in classes for node in ast.walk(tree)):
        # A file outside the package (a test's): its own classes join the package's.
        trees = [tree, *_package_trees()]
        errors, constants = _error_classes(trees), _constants(trees)
    for site in _sites(tree, errors, constants, "", []):
        if site.code not in _NOT_A_PROBLEM:
            # Yielded as an N_() mark, a keyword the extraction run declares (-k N_).
            yield site.line, "N_", problem_msgid(site.code), []


_TREES: list[ast.Module] = []
_NAMES: list[tuple[dict[str, str | None], dict[str, str], frozenset[str]]] = []


def _package_names() -> tuple[dict[str, str | None], dict[str, str], frozenset[str]]:
    """The package's error classes, constants and class names, computed once per extraction
    run: per file they cost a walk of every tree (minutes for the whole package)."""
    if not _NAMES:
        trees = _package_trees()
        classes = frozenset(
            node.name for tree in trees for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
        )
        _NAMES.append((_error_classes(trees), _constants(trees), classes))
    return _NAMES[0]


def _package_trees() -> list[ast.Module]:
    """The whole package's syntax trees, parsed once per extraction run: a file's error
    classes may derive from ones defined elsewhere (PaymentsError from ContractError)."""
    if not _TREES:
        _TREES.extend(
            ast.parse(path.read_text(encoding="utf-8")) for path in PACKAGE_DIR.rglob("*.py")
        )
    return _TREES
