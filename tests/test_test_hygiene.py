"""No test can pass vacuously. A test whose every assertion runs only on some paths passes when none of them is
taken: an assertion in a loop over a collection that may be empty, an ``if``, an ``except`` handler, a ``match``
case, a ``contextlib.suppress`` block or a comprehension, an ``all(...)`` over a collection that may be empty, and a
call of a helper the module defines whose own assertions are all of these (helpers are read one level deep; an
``assert_*`` helper counts as an assertion). Such a test asserts the collection is non-empty first (outside the
loop), or is restructured. Iterating a literal, non-empty tuple or list (or a name the test or its module binds once
to one) counts as unconditional, and so does a branch when every path through it asserts or raises.

And an assertion that an empty collection satisfies whatever it says of the elements, ``not any(...)``, or ``not
[...]``, ``[...] == []`` (``set()``, ``{}``) over a comprehension that filters, checks nothing when the collection is
empty, even beside other assertions: the test shows that collection non-empty before it (``assert items``, ``assert
len(items) == 3``, ``assert x in items``, ``assert items >= {x}``, ``(item,) = items``, ``items[0]``, ``next(...)``
over it), or earlier in the same ``and`` chain, or it is a literal. Without a filter, ``[...] == []`` asserts that
the collection itself is empty, which is no vacuous claim; pytest's ``caplog`` (empty when nothing is logged) and
``threading.enumerate()`` (never empty) need no showing."""

from __future__ import annotations

import ast
import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeGuard

TESTS = Path(__file__).resolve().parent

TEMPLATE_ASSERTIONS = frozenset(
    {
        "has_resource",
        "has_resource_properties",
        "resource_count_is",
        "resource_properties_count_is",
        "has_output",
        "has_parameter",
        "has_mapping",
        "has_condition",
        "template_matches",
        "all_resources",
        "all_resources_properties",
    }
)
"""aws_cdk.assertions.Template's methods that raise when the template does not match."""
RAISING_CONTEXTS = frozenset({"raises", "warns", "deprecated_call", "fail"})
"""pytest's helpers that fail the test when the expected exception or warning does not come."""
SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def call_name(node: ast.Call) -> str:
    return node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")


def is_assertion(node: ast.AST) -> bool:
    if isinstance(node, ast.Assert):
        return True
    if not isinstance(node, ast.Call):
        return False
    name = call_name(node)
    return name.startswith("assert") or name in TEMPLATE_ASSERTIONS or name in RAISING_CONTEXTS


LITERAL_VIEWS = frozenset({"items", "keys", "values"})
COPIES = frozenset({"enumerate", "sorted", "reversed", "list", "tuple", "set", "frozenset", "dict", "iter"})
"""Builtins whose result has as many elements as their (first) argument."""
WRAPPERS = COPIES | {"zip"}


def walk(node: ast.AST) -> Iterator[ast.AST]:
    """``node`` and what it contains, nested functions, lambdas and classes excepted."""
    yield node
    for child in ast.iter_child_nodes(node):
        if not isinstance(child, SCOPES):
            yield from walk(child)


def bindings(nodes: Iterable[ast.AST]) -> dict[str, list[ast.AST | None]]:
    """The values each name is bound to by an assignment among ``nodes`` (None: by an augmented assignment)."""
    bound: dict[str, list[ast.AST | None]] = {}
    for node in nodes:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            bound.setdefault(node.targets[0].id, []).append(node.value)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and isinstance(node.target, ast.Name):
            bound.setdefault(node.target.id, []).append(node.value if isinstance(node, ast.AnnAssign) else None)
    return bound


def bound_once(nodes: Iterable[ast.AST]) -> dict[str, ast.AST]:
    return {name: values[0] for name, values in bindings(nodes).items() if len(values) == 1 and values[0] is not None}


def literal_names(function: ast.AST, module: frozenset[str] = frozenset()) -> set[str]:
    """Names bound once to a literal with at least one element, by the function or (unless the function binds
    them) its module: a loop over them cannot be empty."""
    bound = bindings(ast.walk(function))
    own = {name for name, value in bound_once(ast.walk(function)).items() if is_literal_collection(value, set())}
    return own | (module - bound.keys())


def module_literals(tree: ast.Module) -> frozenset[str]:
    """The names a module's own statements bind once to a literal with at least one element."""
    return frozenset(name for name, value in bound_once(tree.body).items() if is_literal_collection(value, set()))


def is_literal_collection(node: ast.AST, literals: set[str] | frozenset[str]) -> bool:
    """A literal with at least one element (or a name bound to one), a view or wrapper of one, an unfiltered
    comprehension over one, or ``range`` of a literal positive stop."""
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return any(not isinstance(element, ast.Starred) for element in node.elts)
    if isinstance(node, ast.Dict):
        return any(key is not None for key in node.keys)
    if isinstance(node, ast.Name):
        return node.id in literals
    if isinstance(node, COMPREHENSIONS):
        return all(not loop.ifs and is_literal_collection(loop.iter, literals) for loop in node.generators)
    if not isinstance(node, ast.Call):
        return False
    if isinstance(node.func, ast.Attribute) and node.func.attr in LITERAL_VIEWS:
        return is_literal_collection(node.func.value, literals)
    name = getattr(node.func, "id", None)
    if name in WRAPPERS:
        return bool(node.args) and all(is_literal_collection(argument, literals) for argument in node.args)
    if name == "range" and len(node.args) == 1:
        stop = node.args[0]
        return isinstance(stop, ast.Constant) and isinstance(stop.value, int) and stop.value > 0
    return False


def over_all(node: ast.AST, literals: set[str]) -> bool:
    """``assert all(...)`` over a collection that may be empty (``all`` of nothing is true), or a filtered one."""
    if not (isinstance(node, ast.Assert) and isinstance(node.test, ast.Call)):
        return False
    if getattr(node.test.func, "id", None) != "all" or not node.test.args:
        return False
    return not is_literal_collection(node.test.args[0], literals)


# -- collections that pass when empty, and collections shown non-empty ------------------------------------------
def unwrapped(node: ast.AST) -> ast.AST:
    """A collection with its views (``.items()``...) and element-preserving wrappers (``sorted``...) taken off."""
    while isinstance(node, ast.Call):
        if isinstance(node.func, ast.Attribute) and node.func.attr in LITERAL_VIEWS and not node.args:
            node = node.func.value
        elif getattr(node.func, "id", None) in COPIES and node.args:
            node = node.args[0]
        else:
            break
    return node


def filtered(node: ast.AST) -> bool:
    """A comprehension with an ``if``: it says which elements it keeps; without one, ``[...] == []`` says the
    collection itself is empty, which an empty collection does not satisfy vacuously."""
    node = unwrapped(node)
    return isinstance(node, COMPREHENSIONS) and any(loop.ifs for loop in node.generators)


def source(node: ast.AST) -> ast.AST:
    """The collection a comprehension ranges over (its first ``for``'s), or the collection itself."""
    node = unwrapped(node)
    return node.generators[0].iter if isinstance(node, COMPREHENSIONS) else node


def is_empty(node: ast.AST) -> bool:
    """``[]``, ``()``, ``{}``, ``set()``, ``dict()``..."""
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return not node.elts
    if isinstance(node, ast.Dict):
        return not node.keys
    return isinstance(node, ast.Call) and getattr(node.func, "id", None) in COPIES and not node.args


def passing_when_empty(test: ast.AST) -> Iterator[ast.AST]:
    """The collections whose emptiness alone makes ``test`` true: ``not any(...)``, ``not literal & {...}``, and
    ``not [...]``, ``[...] == []`` or ``len([...]) == 0`` over a comprehension that filters."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        operand = test.operand
        if isinstance(operand, ast.Call) and call_name(operand) == "any" and len(operand.args) == 1:
            yield source(operand.args[0])
        elif isinstance(operand, ast.BinOp) and isinstance(operand.op, ast.BitAnd):
            yield from (source(side) for side in (operand.left, operand.right) if isinstance(side, COMPREHENSIONS))
        elif filtered(operand):
            yield source(operand)
    elif isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq):
        for side, other in ((test.left, test.comparators[0]), (test.comparators[0], test.left)):
            if filtered(side) and is_empty(other):
                yield source(side)
            elif is_length(side) and filtered(side.args[0]) and isinstance(other, ast.Constant) and other.value == 0:
                yield source(side.args[0])


NEVER_EMPTY = frozenset({"threading.enumerate()"})
"""Calls whose collection is never empty (``threading.enumerate()`` lists the calling thread)."""
CAPTURES = frozenset({"caplog"})
"""pytest's log capture: empty exactly when nothing is logged, which a test that nothing is logged asserts; pytest,
not the test, answers for the capture."""


def root(node: ast.AST) -> str | None:
    """The name an attribute, call or subscript chain starts from (``caplog`` of ``caplog.records``)."""
    while isinstance(node, (ast.Attribute, ast.Call, ast.Subscript)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def is_length(node: ast.AST) -> TypeGuard[ast.Call]:
    return isinstance(node, ast.Call) and getattr(node.func, "id", None) == "len" and len(node.args) == 1


FLIPPED: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.Eq,
    ast.NotEq: ast.NotEq,
    ast.Lt: ast.Gt,
    ast.Gt: ast.Lt,
    ast.LtE: ast.GtE,
    ast.GtE: ast.LtE,
}


def least(count: ast.AST, literals: set[str]) -> int | None:
    """The least value of a count: an int, ``len`` of a literal (or of anything: 0), and sums of these."""
    if isinstance(count, ast.Constant) and type(count.value) is int:
        return count.value
    if is_length(count):
        return int(is_literal_collection(count.args[0], literals))
    if isinstance(count, ast.BinOp) and isinstance(count.op, ast.Add):
        left, right = least(count.left, literals), least(count.right, literals)
        return None if left is None or right is None else left + right
    return None


def counted(node: ast.AST, relation: type[ast.cmpop], other: ast.AST, literals: set[str]) -> ast.AST | None:
    """The collection ``node relation other`` shows non-empty: ``len(c) == 3``, ``len(c) > 0``, ``len(c) == 1 +
    len(d)``, ``c == [1]``, ``c >= {1}``, ``c != []``."""
    if is_length(node):
        bound = least(other, literals)
        at_least = {ast.Eq: 1, ast.Gt: 0, ast.GtE: 1}.get(relation)
        shown = bound is not None and at_least is not None and bound >= at_least
        shown = shown or (relation is ast.NotEq and isinstance(other, ast.Constant) and other.value == 0)
        return node.args[0] if shown else None
    if relation in (ast.Eq, ast.Gt, ast.GtE) and is_literal_collection(other, literals):
        return node
    return node if relation is ast.NotEq and is_empty(other) else None


def facts(test: ast.AST, literals: set[str]) -> Iterator[ast.AST]:
    """The collections an assertion of ``test`` shows non-empty."""
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        for value in test.values:
            yield from facts(value, literals)
    elif isinstance(test, ast.Compare):
        for left, op, right in zip([test.left, *test.comparators[:-1]], test.ops, test.comparators, strict=True):
            if isinstance(op, ast.In):
                yield right
            for side, relation, other in ((left, type(op), right), (right, FLIPPED.get(type(op)), left)):
                shown = counted(side, relation, other, literals) if relation else None
                if shown:
                    yield shown
    elif isinstance(test, ast.Call) and call_name(test) in ("any", "len") and len(test.args) == 1:
        yield test.args[0]
    elif not isinstance(test, (ast.UnaryOp, ast.Constant)):
        yield test


def evidence(node: ast.AST, literals: set[str]) -> Iterator[ast.AST]:
    """The collections a statement or expression shows non-empty when it runs without raising."""
    if isinstance(node, ast.Assert):
        yield from facts(node.test, literals)
    elif isinstance(node, ast.Assign) and any(unpacks(target) for target in node.targets):
        yield node.value
    elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and not isinstance(node.slice, ast.Slice):
        yield node.value
    elif isinstance(node, ast.Call) and call_name(node) == "next" and len(node.args) == 1:
        yield node.args[0]
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "index":
        yield node.func.value


def unpacks(target: ast.AST) -> bool:
    """``(a,) = c``, ``a, *rest = c``: ``c`` has an element."""
    return isinstance(target, (ast.Tuple, ast.List)) and any(not isinstance(e, ast.Starred) for e in target.elts)


# -- the assertions of a test, and whether each runs on every path ----------------------------------------------
class Verdict(enum.Enum):
    """What an assertion (or a call of a helper that asserts) tells, wherever it runs."""

    CAN_FAIL = "can fail"
    CONDITIONAL = "all(...) over a collection that may be empty, or a call of a helper that asserts only so"
    EMPTY = "holds of an empty collection, which the test does not show non-empty"


@dataclass
class Scope:
    """A test function or module helper: its literal names, its names bound once, the collections it shows
    non-empty (with the line where it does), and the module's helpers (none inside a helper: one level deep)."""

    function: ast.FunctionDef | ast.AsyncFunctionDef
    module_literals: frozenset[str]
    helpers: dict[str, ast.FunctionDef | ast.AsyncFunctionDef]
    helper_verdicts: dict[str, Verdict | None]
    """The module's helpers' verdicts, shared by its tests."""
    literals: set[str] = field(init=False)
    bound: dict[str, ast.AST] = field(init=False)
    shown: list[tuple[int, str]] = field(init=False)

    def __post_init__(self) -> None:
        parameters = {argument.arg for argument in ast.walk(self.function.args) if isinstance(argument, ast.arg)}
        self.helpers = {name: helper for name, helper in self.helpers.items() if name not in parameters}
        self.literals = literal_names(self.function, self.module_literals - parameters)
        self.bound = bound_once(walk(self.function))
        self.shown = [
            (node.lineno, key)
            for node in walk(self.function)
            for collection in evidence(node, self.literals)
            for key in self.keys(collection, set())
        ]

    def keys(self, collection: ast.AST, seen: set[str]) -> Iterator[str]:
        """``collection`` and what it is made of: if it has an element, so do they."""
        collection = unwrapped(collection)
        yield ast.dump(collection)
        if isinstance(collection, COMPREHENSIONS):
            yield from self.keys(collection.generators[0].iter, seen)
        elif isinstance(collection, ast.Name) and collection.id in self.bound and collection.id not in seen:
            yield from self.keys(self.bound[collection.id], seen | {collection.id})

    def proven(self, collection: ast.AST, known: set[str], seen: frozenset[str] = frozenset()) -> bool:
        """Whether ``collection`` is a literal, or shown non-empty (``known``), or made of one such unfiltered."""
        collection = unwrapped(collection)
        if is_literal_collection(collection, self.literals) or ast.dump(collection) in known:
            return True
        if ast.unparse(collection) in NEVER_EMPTY or root(collection) in CAPTURES:
            return True
        if isinstance(collection, COMPREHENSIONS) and not any(loop.ifs for loop in collection.generators):
            return self.proven(collection.generators[0].iter, known, seen)
        name = collection.id if isinstance(collection, ast.Name) else None
        return name in self.bound and name not in seen and self.proven(self.bound[name], known, seen | {name})

    def verdict(self, node: ast.AST) -> Verdict | None:
        """None if ``node`` is no assertion (nor a call of a helper that asserts), else what it tells."""
        if isinstance(node, ast.Assert):
            return self.assert_verdict(node)
        if is_assertion(node):
            return Verdict.CAN_FAIL
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in self.helpers:
            return self.helper_verdict(node.func.id)
        return None

    def assert_verdict(self, node: ast.Assert) -> Verdict:
        known = {key for line, key in self.shown if line < node.lineno}
        chain = node.test.values if isinstance(node.test, ast.BoolOp) and isinstance(node.test.op, ast.And) else []
        for operand in chain or [node.test]:
            if not all(self.proven(collection, known) for collection in passing_when_empty(operand)):
                return Verdict.EMPTY
            known |= {key for collection in facts(operand, self.literals) for key in self.keys(collection, set())}
        return Verdict.CONDITIONAL if over_all(node, self.literals) else Verdict.CAN_FAIL

    def helper_verdict(self, name: str) -> Verdict | None:
        if name not in self.helper_verdicts:
            helper = Scope(self.helpers[name], self.module_literals, {}, {})
            found = list(assertions(helper.function.body, helper))
            sound = any(verdict == Verdict.CAN_FAIL and not conditional for _, verdict, conditional in found)
            self.helper_verdicts[name] = (Verdict.CAN_FAIL if sound else Verdict.CONDITIONAL) if found else None
        return self.helper_verdicts[name]


def alternatives(node: ast.AST) -> tuple[list[ast.AST], list[list[ast.stmt]]] | None:
    """A statement of which exactly one path runs: the part that always runs, and each path's statements."""
    if isinstance(node, ast.If):
        return [node.test], [node.body, node.orelse]
    if isinstance(node, (ast.Try, ast.TryStar)) and node.handlers:
        return [*node.body, *node.finalbody], [*(handler.body for handler in node.handlers), node.orelse]
    if isinstance(node, ast.Match):
        last = node.cases[-1]
        default = isinstance(last.pattern, ast.MatchAs) and last.pattern.pattern is None and last.guard is None
        return [node.subject], [*(case.body for case in node.cases), *([] if default else [[]])]
    return None


def repeated(node: ast.AST, literals: set[str]) -> tuple[list[ast.AST], list[ast.AST], bool] | None:
    """A statement or comprehension with a part that may not run: what always runs, the rest, and whether the
    rest may not run (a loop over a collection that may be empty, a ``suppress`` block)."""
    if isinstance(node, (ast.For, ast.AsyncFor)):
        return [node.target, node.iter], [*node.body, *node.orelse], not is_literal_collection(node.iter, literals)
    if isinstance(node, ast.While):
        return [node.test], [*node.body, *node.orelse], True
    if isinstance(node, (ast.With, ast.AsyncWith)):
        suppressed = any(
            isinstance(item.context_expr, ast.Call) and call_name(item.context_expr) == "suppress"
            for item in node.items
        )
        return list(node.items), list(node.body), suppressed
    if isinstance(node, COMPREHENSIONS):
        return [], list(ast.iter_child_nodes(node)), not is_literal_collection(node, literals)
    return None


def assertions(
    nodes: Iterable[ast.AST], scope: Scope, conditional: bool = False
) -> Iterator[tuple[ast.AST, Verdict, bool]]:
    """Each assertion among ``nodes`` (nested functions and classes excepted), its verdict, and whether it runs only
    when a loop over a possibly empty collection iterates, a branch is taken or no exception is suppressed."""
    for node in nodes:
        if isinstance(node, SCOPES):
            continue
        verdict = scope.verdict(node)
        if verdict:
            yield node, verdict, conditional
        yield from inner_assertions(node, scope, conditional)


def inner_assertions(node: ast.AST, scope: Scope, conditional: bool) -> Iterator[tuple[ast.AST, Verdict, bool]]:
    paths = alternatives(node)
    if paths:
        always, branches = paths
        yield from assertions(always, scope, conditional)
        found = [list(assertions(branch, scope)) for branch in branches]
        each = all(
            any(verdict == Verdict.CAN_FAIL and not inner for _, verdict, inner in checks) or fails(branch)
            for checks, branch in zip(found, branches, strict=True)
        )
        for checks in found:
            yield from ((check, verdict, conditional or inner or not each) for check, verdict, inner in checks)
        return
    parts = repeated(node, scope.literals)
    if parts:
        always, rest, maybe = parts
        yield from assertions(always, scope, conditional)
        yield from assertions(rest, scope, conditional or maybe)
    else:
        yield from assertions(ast.iter_child_nodes(node), scope, conditional)


def fails(branch: list[ast.stmt]) -> bool:
    """A path that ends in ``raise``: the test fails there."""
    return bool(branch) and isinstance(branch[-1], ast.Raise)


def functions_under_test(body: list[ast.stmt]) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            yield node
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            yield from functions_under_test(node.body)


def vacuous_tests(source: str, filename: str = "<test>") -> list[str]:
    """The test functions of ``source`` that assert something, but only conditionally, or that assert what an
    empty collection satisfies without showing it non-empty."""
    tree = ast.parse(source, filename=filename)
    literals = module_literals(tree)
    helpers = {
        node.name: node
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("test")
    }
    found: list[str] = []
    verdicts: dict[str, Verdict | None] = {}
    for function in functions_under_test(tree.body):
        checks = list(assertions(function.body, Scope(function, literals, helpers, verdicts)))
        empty = [check.lineno for check, verdict, _ in checks if verdict == Verdict.EMPTY]
        if empty:
            lines = ", ".join(map(str, empty))
            found.append(f"{filename}:{function.lineno} {function.name} (line {lines}: its collection may be empty)")
        elif checks and all(verdict != Verdict.CAN_FAIL or conditional for _, verdict, conditional in checks):
            found.append(f"{filename}:{function.lineno} {function.name} (every assertion is conditional)")
    return found


def checked_files() -> list[Path]:
    return sorted(TESTS.rglob("*.py"))


def test_no_test_passes_when_its_collection_is_empty():
    files = checked_files()
    assert len(files) > 20 and Path(__file__) in files
    found = [test for path in files for test in vacuous_tests(path.read_text(), str(path.relative_to(TESTS.parent)))]
    assert not found, "assert the collection is non-empty before the loop or the assertion:\n" + "\n".join(found)


# -- the checker itself ------------------------------------------------------------------------------------------
VACUOUS = {
    "loop": "def test_x(items):\n    for item in items:\n        assert item.ok\n",
    "if": "def test_x(items):\n    if items:\n        assert items[0]\n",
    "while": "def test_x(q):\n    while q:\n        assert q.pop()\n",
    "nested loop": "def test_x(a):\n    for x in (1, 2):\n        for y in a[x]:\n            assert y\n",
    "all": "def test_x(items):\n    assert all(item.ok for item in items)\n",
    "template in a loop": "def test_x(t, names):\n    for n in names:\n        t.has_resource_properties('T', {})\n",
    "method": "class TestX:\n    def test_x(self, items):\n        for item in items:\n            assert item\n",
    "loop over a name": "def test_x():\n    for item in ITEMS:\n        assert item\n",
    "name rebound": "def test_x(a):\n    xs = [1]\n    xs = a\n    for x in xs:\n        assert x\n",
    "all over a name": "def test_x(a):\n    assert all(x > 0 for x in a.values())\n",
    "all over a filtered literal": "def test_x(t, f):\n    assert all(t[k] for k in ('a', 'b') if f(k))\n",
    "template in a comprehension": "def test_x(t, names):\n    [t.has_resource('T', {'N': n}) for n in names]\n",
    # an assertion any empty collection satisfies, even beside others
    "not any": "def test_x(items):\n    assert not any(i.bad for i in items)\n",
    "not any beside an assertion": "def test_x(r, items):\n    assert r.ok\n    assert not any(i.bad for i in items)\n",
    "filtered == []": "def test_x(r, items):\n    assert r.ok\n    assert [i for i in items if i.bad] == []\n",
    "not filtered": "def test_x(items):\n    assert not [i for i in items if i.bad]\n",
    "filtered == set()": "def test_x(items):\n    assert {i.name for i in items if i.bad} == set()\n",
    "filtered == {}": "def test_x(d):\n    assert {k: v for k, v in d.items() if v is None} == {}\n",
    "not literal & set": "def test_x(lines):\n    assert not {'a', 'b'} & {line.name for line in lines}\n",
    "in an and chain": "def test_x(r, items):\n    assert r.ok and not any(i.bad for i in items)\n",
    "in a loop over a literal": (
        "def test_x(d):\n    for k in ('a', 'b'):\n        assert not any(v.bad for v in d[k])\n"
    ),
    "shown non-empty after": "def test_x(items):\n    assert not any(i.bad for i in items)\n    assert items\n",
    "filtered from a shown one": (
        "def test_x(a):\n    assert a\n    odd = [x for x in a if x.odd]\n    assert not [x for x in odd if x.bad]\n"
    ),
    # a module helper that asserts only conditionally, or called only conditionally
    "helper that loops": (
        "def check(items):\n    for i in items:\n        assert i\n\n\ndef test_x(items):\n    check(items)\n"
    ),
    "helper in a loop": (
        "def check(i):\n    assert i.ok\n\n\ndef test_x(items):\n    for i in items:\n        check(i)\n"
    ),
    "helper's not any": "def check(items):\n    assert not any(items)\n\n\ndef test_x(items):\n    check(items)\n",
    # an assertion in a path that need not run
    "except": "def test_x(f):\n    try:\n        f()\n    except ValueError as e:\n        assert 'x' in str(e)\n",
    "suppress": "def test_x(x):\n    with contextlib.suppress(KeyError):\n        assert x['a']\n",
    "match case": (
        "def test_x(x):\n    match x:\n        case [a]:\n            assert a\n"
        "        case {'a': a}:\n            assert a\n"
    ),
    "nested class": (
        "class TestA:\n    class TestB:\n        def test_x(self, items):\n"
        "            for i in items:\n                assert i\n"
    ),
}
SOUND = {
    "non-empty first": "def test_x(items):\n    assert items\n    for item in items:\n        assert item.ok\n",
    "literal loop": "def test_x(t):\n    for name in ('a', 'b'):\n        assert t[name]\n",
    "literal range": "def test_x(t):\n    for index in range(3):\n        assert t[index]\n",
    "raises": "def test_x(f):\n    with pytest.raises(ValueError):\n        f()\n",
    "template": "def test_x(t):\n    t.resource_count_is('T', 0)\n",
    "all with a count": "def test_x(items):\n    assert items and all(i.ok for i in items)\n",
    "no assertion at all": "def test_x(check):\n    check()\n",
    "a helper that asserts": "def test_x(items):\n    assert_ok(items)\n",
    "with block": "def test_x(path):\n    with open(path) as f:\n        assert f.read()\n",
    "local literal": "def test_x(t):\n    e = {'a': 1}\n    for k, v in e.items():\n        assert t[k] == v\n",
    "literal with a starred part": "def test_x(t, more):\n    for k in ['a', *more]:\n        assert t[k]\n",
    "all over a literal": "def test_x(t):\n    assert all(t[k] for k in ('a', 'b'))\n",
    "module literal": "NAMES = ('a', 'b')\n\n\ndef test_x(t):\n    for k in NAMES:\n        assert t[k]\n",
    "template in a literal comprehension": "def test_x(t):\n    [t.has_resource('T', {'N': n}) for n in ('a', 'b')]\n",
    # the collection shown non-empty first, or a literal
    "not any, non-empty first": "def test_x(items):\n    assert items\n    assert not any(i.bad for i in items)\n",
    "not any in an and chain": "def test_x(items):\n    assert items and not any(i.bad for i in items)\n",
    "filtered == [], counted first": (
        "def test_x(items):\n    assert len(items) == 3\n    assert [i for i in items if i.bad] == []\n"
    ),
    "not filtered, counted first": (
        "def test_x(ls, a):\n    assert len(ls) == 1 + len(a)\n    assert not [x for x in ls if x.bad]\n"
    ),
    "filtered == set(), unpacked first": (
        "def test_x(calls):\n    (start,) = [c for c in calls if c.op == 'Start']\n"
        "    assert {c.op for c in calls if c.op == 'Stop'} == set()\n"
    ),
    "not any, a member first": (
        "def test_x(calls):\n    assert 'Start' in calls\n    assert not any(c == 'Stop' for c in calls)\n"
    ),
    "filtered == {}, a superset first": (
        "def test_x(d):\n    assert set(d) >= {'a'}\n    assert {k: v for k, v in d.items() if v is None} == {}\n"
    ),
    "not any, indexed first": (
        "def test_x(lines):\n    assert lines[0] == 'a'\n    assert not any(x.bad for x in lines)\n"
    ),
    "not any, next over it first": (
        "def test_x(xs):\n    x = next(x for x in xs if x.ok)\n    assert not any(x.bad for x in xs)\n"
    ),
    "not filtered, derived unfiltered": (
        "def test_x(items):\n    assert items\n    names = {i.name: i for i in items}\n"
        "    assert not [n for n in names if n[0] == '_']\n"
    ),
    "filtered == [], a part shown": (
        "def test_x(a):\n    moved = [x for x in a if x.moved]\n    assert {'b'} <= set(moved)\n"
        "    assert [x for x in a if x.lost] == []\n"
    ),
    "filtered literal == []": "def test_x(t):\n    assert [k for k in ('a', 'b') if not t[k]] == []\n",
    "module literal not any": (
        "NAMES = ('a', 'b')\n\n\ndef test_x(t):\n    assert not any(t[k] is None for k in NAMES)\n"
    ),
    "unfiltered == []: the collection is empty": "def test_x(lint):\n    assert [str(m) for m in lint()] == []\n",
    "caplog": "def test_x(caplog):\n    assert [r for r in caplog.records if r.levelno >= 40] == []\n",
    "threads": "def test_x():\n    assert not [t for t in threading.enumerate() if t.name == 'sender']\n",
    # helpers: analysed one level deep; assert_* helpers are assertions
    "helper that asserts first": (
        "def check(items):\n    assert items\n    for i in items:\n        assert i\n\n\n"
        "def test_x(items):\n    check(items)\n"
    ),
    "assert_ helper that loops": (
        "def assert_ok(items):\n    for i in items:\n        assert i\n\n\ndef test_x(items):\n    assert_ok(items)\n"
    ),
    "helper that asserts nothing, in a loop": (
        "def make(i):\n    return i\n\n\ndef test_x(items):\n    assert items\n    for i in items:\n        make(i)\n"
    ),
    "a parameter named as a helper": (
        "def check(items):\n    for i in items:\n        assert i\n\n\ndef test_x(items, check):\n    check(items)\n"
    ),
    # every path asserts
    "except, else fails": (
        "def test_x(f):\n    try:\n        f()\n    except ValueError as e:\n        assert 'x' in str(e)\n"
        "    else:\n        raise AssertionError('no error')\n"
    ),
    "if and else both assert": "def test_x(a):\n    if a:\n        assert a.ok\n    else:\n        assert a is None\n",
    "match, every case asserts": (
        "def test_x(x):\n    match x:\n        case [a]:\n            assert a\n"
        "        case _:\n            assert not x\n"
    ),
    "suppress, then assert": (
        "def test_x(path):\n    with contextlib.suppress(FileNotFoundError):\n        path.unlink()\n"
        "    assert not path.exists()\n"
    ),
    "nested class, non-empty first": (
        "class TestA:\n    class TestB:\n        def test_x(self, items):\n            assert items\n"
        "            for i in items:\n                assert i\n"
    ),
}


def test_the_checker_flags_every_vacuous_shape():
    assert VACUOUS
    flagged = {name: vacuous_tests(source) for name, source in VACUOUS.items()}
    assert [name for name, found in flagged.items() if len(found) != 1] == []


def test_the_checker_accepts_sound_tests():
    assert SOUND
    assert {name: vacuous_tests(source) for name, source in SOUND.items()} == {name: [] for name in SOUND}
