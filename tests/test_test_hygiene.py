"""No test can pass vacuously: a test whose every assertion sits in a loop, an ``if`` or an ``all(...)`` over a
collection passes when the collection is empty. Such a test asserts the collection is non-empty first (outside
the loop), or is restructured; iterating a literal, non-empty tuple or list counts as unconditional."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

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


def is_assertion(node: ast.AST) -> bool:
    if isinstance(node, ast.Assert):
        return True
    if not isinstance(node, ast.Call):
        return False
    name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
    return name.startswith("assert") or name in TEMPLATE_ASSERTIONS or name in RAISING_CONTEXTS


LITERAL_VIEWS = frozenset({"items", "keys", "values"})
WRAPPERS = frozenset({"enumerate", "zip", "sorted", "reversed", "list", "tuple"})


def literal_names(function: ast.AST) -> set[str]:
    """Names the function binds (once) to a literal with at least one element: a loop over them cannot be empty."""
    bound: dict[str, list[ast.AST]] = {}
    for node in ast.walk(function):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            bound.setdefault(node.targets[0].id, []).append(node.value)
    return {name for name, values in bound.items() if len(values) == 1 and is_literal_collection(values[0], set())}


def is_literal_collection(node: ast.AST, literals: set[str]) -> bool:
    """A literal with at least one element (or a name bound to one), a view or wrapper of one, or ``range`` of
    a literal positive stop."""
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return any(not isinstance(element, ast.Starred) for element in node.elts)
    if isinstance(node, ast.Dict):
        return any(key is not None for key in node.keys)
    if isinstance(node, ast.Name):
        return node.id in literals
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


def assertions(node: ast.AST, literals: set[str], conditional: bool = False) -> Iterator[tuple[ast.AST, bool]]:
    """Each assertion under ``node`` (nested functions and classes excepted), and whether it runs only when a
    loop over a possibly empty collection iterates or an ``if`` holds."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        if is_assertion(child):
            yield child, conditional or over_all(child, literals)
        if isinstance(child, (ast.For, ast.AsyncFor, ast.While, ast.If)):
            looped = isinstance(child, (ast.For, ast.AsyncFor))
            yield from assertions(child.iter if looped else child.test, literals, conditional)
            inner = conditional or not (looped and is_literal_collection(child.iter, literals))
            yield from assertions(ast.Module(body=[*child.body, *child.orelse], type_ignores=[]), literals, inner)
        else:
            yield from assertions(child, literals, conditional)


def over_all(node: ast.AST, literals: set[str]) -> bool:
    """``assert all(...)`` over a collection that may be empty (``all`` of nothing is true)."""
    if not (isinstance(node, ast.Assert) and isinstance(node.test, ast.Call)):
        return False
    if getattr(node.test.func, "id", None) != "all" or not node.test.args:
        return False
    argument = node.test.args[0]
    if isinstance(argument, (ast.GeneratorExp, ast.ListComp, ast.SetComp)):
        return not all(is_literal_collection(generator.iter, literals) for generator in argument.generators)
    return not is_literal_collection(argument, literals)


def functions_under_test(tree: ast.Module) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            yield node
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            yield from (
                item
                for item in node.body
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name.startswith("test")
            )


def vacuous_tests(source: str, filename: str = "<test>") -> list[str]:
    """The test functions of ``source`` that assert something, but only conditionally."""
    found = []
    for function in functions_under_test(ast.parse(source, filename=filename)):
        checks = list(assertions(function, literal_names(function)))
        if checks and all(conditional for _, conditional in checks):
            found.append(f"{filename}:{function.lineno} {function.name}")
    return found


def checked_files() -> list[Path]:
    return sorted(TESTS.rglob("*.py"))


def test_no_test_passes_when_its_collection_is_empty():
    files = checked_files()
    assert len(files) > 20 and Path(__file__) in files
    found = [test for path in files for test in vacuous_tests(path.read_text(), str(path.relative_to(TESTS.parent)))]
    assert not found, "assert the collection is non-empty before looping over it:\n" + "\n".join(found)


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
}


def test_the_checker_flags_every_vacuous_shape():
    assert VACUOUS
    flagged = {name: vacuous_tests(source) for name, source in VACUOUS.items()}
    assert [name for name, found in flagged.items() if len(found) != 1] == []


def test_the_checker_accepts_sound_tests():
    assert SOUND
    assert {name: vacuous_tests(source) for name, source in SOUND.items()} == {name: [] for name in SOUND}
