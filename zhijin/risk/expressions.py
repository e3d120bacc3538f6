"""Rule expressions: a small typed language, checked when a rule is saved and evaluated by
simpleeval (a well-kept safe evaluator over Python's syntax tree), never by Python's `eval`.

The language: feature names (features.FEATURES), integer, boolean and string literals,
`and` `or` `not`, comparisons (one operator each: `<` `<=` `>` `>=` on integers, `==` `!=` on
equal types, `in` / `not in` a literal list), `+ - * // %` on integers, and two functions for
features that may be missing: `known(x)` (true when x has a value) and `or_default(x, d)` (x, or
the literal d when x is missing).  A nullable feature used anywhere else is refused when the
rule is saved, so a missing value is always handled explicitly; floats are refused (rules speak
in minor units and basis points).  The whole expression must be a boolean.

`check(text)` parses and type-checks (raising ExpressionInvalid with a stable code and the
column); `compile_expression(text)` returns a `CompiledExpression` whose `matches(row)`
evaluates it.  Nothing is parsed or checked at scoring time.
"""

from __future__ import annotations

import ast
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from simpleeval import EvalWithCompoundTypes

from zhijin.chain.errors import ZhijinError
from zhijin.risk import limits
from zhijin.risk.features import FEATURES

__all__ = ["CompiledExpression", "ExpressionInvalid", "check", "compile_expression", "names_in"]

_FUNCTIONS = ("known", "or_default")
_ORDER_OPS = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_EQUALITY_OPS = (ast.Eq, ast.NotEq)
_ARITHMETIC_OPS = (ast.Add, ast.Sub, ast.Mult, ast.FloorDiv, ast.Mod)


class ExpressionInvalid(ZhijinError):
    """A rule expression that does not parse or does not type-check."""

    code = "rule_expression_invalid"
    http_status = 422


def _fail(problem: str, node: ast.AST | None, message: str) -> ExpressionInvalid:
    column = getattr(node, "col_offset", 0) + 1 if node is not None else 1
    return ExpressionInvalid(message=f"{message} (column {column})", problem=problem, column=column)


def _literal_type(value: object, node: ast.AST) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, str):
        return "str"
    raise _fail("literal_not_allowed", node, f"the literal {value!r} is not allowed (no floats)")


class _Checker:
    def __init__(self, features: Mapping[str, str]) -> None:
        self.features = features
        self.names: set[str] = set()

    def typed(self, node: ast.AST) -> str:
        """The type of a node that must have a value (not a nullable feature)."""
        kind = self.any_type(node)
        if kind.endswith("?"):
            raise _fail(
                "feature_may_be_missing",
                node,
                f"{ast.unparse(node)} may be missing: write known(...) or or_default(..., value)",
            )
        return kind

    def any_type(self, node: ast.AST) -> str:
        if isinstance(node, ast.Name):
            kind = self.features.get(node.id)
            if kind is None:
                raise _fail("unknown_feature", node, f"no feature is named {node.id!r}")
            self.names.add(node.id)
            return kind
        if isinstance(node, ast.Constant):
            return _literal_type(node.value, node)
        if isinstance(node, ast.BoolOp):
            for value in node.values:
                self.expect(value, "bool")
            return "bool"
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.Not):
                self.expect(node.operand, "bool")
                return "bool"
            if isinstance(node.op, ast.USub):
                self.expect(node.operand, "int")
                return "int"
            raise _fail("operator_not_allowed", node, "only `not` and `-` apply to one value")
        if isinstance(node, ast.BinOp):
            if not isinstance(node.op, _ARITHMETIC_OPS):
                raise _fail("operator_not_allowed", node, "arithmetic is + - * // % on integers")
            self.expect(node.left, "int")
            self.expect(node.right, "int")
            return "int"
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        raise _fail(
            "syntax_not_allowed", node, f"{type(node).__name__} is not part of the rule language"
        )

    def expect(self, node: ast.AST, kind: str) -> None:
        found = self.typed(node)
        if found != kind:
            raise _fail("type_mismatch", node, f"{ast.unparse(node)} is {found}, not {kind}")

    def compare(self, node: ast.Compare) -> str:
        if len(node.ops) != 1:
            raise _fail("chained_comparison", node, "one comparison at a time: join with `and`")
        op, right = node.ops[0], node.comparators[0]
        if isinstance(op, (ast.Is, ast.IsNot)):
            if not (isinstance(right, ast.Constant) and right.value is None):
                raise _fail("operator_not_allowed", node, "`is` compares only with None")
            if not self.any_type(node.left).endswith("?"):
                raise _fail("never_missing", node, f"{ast.unparse(node.left)} is never missing")
            return "bool"
        if isinstance(op, (ast.In, ast.NotIn)):
            if not isinstance(right, (ast.List, ast.Tuple)) or not right.elts:
                raise _fail("operator_not_allowed", node, "`in` takes a literal list: [1, 2]")
            left = self.typed(node.left)
            for element in right.elts:
                if not isinstance(element, ast.Constant):
                    raise _fail("literal_expected", element, "a list of literals only")
                if _literal_type(element.value, element) != left:
                    raise _fail("type_mismatch", element, f"the list must hold {left} values")
            return "bool"
        left, other = self.typed(node.left), self.typed(right)
        if isinstance(op, _ORDER_OPS):
            if left != "int" or other != "int":
                raise _fail("type_mismatch", node, "< <= > >= compare integers")
            return "bool"
        if isinstance(op, _EQUALITY_OPS):
            if left != other:
                raise _fail("type_mismatch", node, f"{left} compared with {other}")
            return "bool"
        raise _fail("operator_not_allowed", node, "this comparison is not allowed")

    def call(self, node: ast.Call) -> str:
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in _FUNCTIONS or node.keywords:
            raise _fail(
                "function_not_allowed", node, "the functions are known(x), or_default(x, d)"
            )
        if name == "known":
            if len(node.args) != 1 or not isinstance(node.args[0], ast.Name):
                raise _fail("function_arguments", node, "known takes one feature name")
            if not self.any_type(node.args[0]).endswith("?"):
                raise _fail("never_missing", node, f"{node.args[0].id} is never missing")
            return "bool"
        if len(node.args) != 2 or not isinstance(node.args[0], ast.Name):
            raise _fail("function_arguments", node, "or_default takes a feature and a literal")
        kind = self.any_type(node.args[0])
        default = node.args[1]
        if not kind.endswith("?"):
            raise _fail("never_missing", node, f"{node.args[0].id} is never missing")
        if not isinstance(default, ast.Constant) and not (
            isinstance(default, ast.UnaryOp)
            and isinstance(default.op, ast.USub)
            and isinstance(default.operand, ast.Constant)
        ):
            raise _fail("literal_expected", default, "the default of or_default is a literal")
        if self.typed(default) != kind[:-1]:
            raise _fail("type_mismatch", default, f"the default must be {kind[:-1]}")
        return kind[:-1]


def _parse(text: str) -> ast.Expression:
    if not text.strip():
        raise _fail("empty", None, "the expression is empty")
    if len(text) > limits.EXPRESSION_CHARS_MAX:
        raise _fail("too_long", None, f"at most {limits.EXPRESSION_CHARS_MAX} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as error:
        raise ExpressionInvalid(
            message=f"the expression does not parse: {error.msg} (column {error.offset or 1})",
            problem="syntax_error",
            column=error.offset or 1,
        ) from None
    if sum(1 for _ in ast.walk(tree)) > limits.EXPRESSION_NODES_MAX:
        raise _fail("too_complex", None, f"at most {limits.EXPRESSION_NODES_MAX} syntax nodes")
    return tree


def check(text: str, features: Mapping[str, str] = FEATURES) -> frozenset[str]:
    """Parse and type-check; the feature names it reads.  Raises ExpressionInvalid."""
    tree = _parse(text)
    checker = _Checker(features)
    result = checker.typed(tree.body)
    if result != "bool":
        raise _fail("not_boolean", tree.body, f"a rule is a condition (bool), this is {result}")
    return frozenset(checker.names)


def names_in(text: str) -> frozenset[str]:
    return check(text)


def _or_default(value: Any, default: Any) -> Any:
    return default if value is None else value


def _known(value: Any) -> bool:
    return value is not None


_FUNCTION_TABLE = {"known": _known, "or_default": _or_default}


@dataclass(frozen=True)
class CompiledExpression:
    """A checked expression and simpleeval's parse of it; `matches` evaluates it on a row."""

    text: str
    names: frozenset[str]
    parsed: Any

    def matches(self, row: Mapping[str, Any]) -> bool:
        evaluator = _evaluator()
        evaluator.names = row
        return evaluator.eval(self.text, previously_parsed=self.parsed) is True


_local = threading.local()


def _evaluator() -> EvalWithCompoundTypes:
    """One evaluator per thread (an evaluator holds the row it is evaluating)."""
    evaluator: EvalWithCompoundTypes | None = getattr(_local, "evaluator", None)
    if evaluator is None:
        evaluator = EvalWithCompoundTypes(functions=dict(_FUNCTION_TABLE))
        _local.evaluator = evaluator
    return evaluator


def compile_expression(text: str) -> CompiledExpression:
    names = check(text)
    parsed = _evaluator().parse(text.strip())
    return CompiledExpression(text=text.strip(), names=names, parsed=parsed)
