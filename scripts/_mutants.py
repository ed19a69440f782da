"""A small AST-based mutator for one Python file, with SQL-aware string mutations.

`mutants(source)` lists every mutant of `source` as a `Mutant`: one change at one place,
applied as a splice of the original text (comments and layout stay), and only kept when
the result still compiles. Kinds:

- `compare`: `==`/`!=`, `<`/`<=`, `>`/`>=`, `is`/`is not`, `in`/`not in` swapped;
- `boolean`: `and`/`or` swapped;
- `number`: an integer literal n to n+1 and n-1;
- `not`: `not x` to `x`;
- `return`: `return x` to `return None`;
- `delete`: a statement replaced by `pass`;
- `sql`: inside a string that is SQL (a statement, a condition fragment, `ASC`/`DESC`):
  ASC/DESC swapped, `<`/`<=` and `>`/`>=` swapped, `= ?` to `!= ?`, `IS NULL`/`IS NOT NULL`,
  `AND`/`OR` swapped, `BEGIN IMMEDIATE` to `BEGIN`, `FOR UPDATE` dropped,
  one WHERE condition dropped (made always true, parameters kept),
  an ORDER BY tie-breaker dropped, an ORDER BY given `DESC`, `LIMIT`/`OFFSET` n to n+1,
  a number n to n+1, `max`/`min` swapped, `INSERT OR REPLACE` to `INSERT OR IGNORE`.

Not mutated: docstrings and comments, the text of non-SQL strings (error messages),
`import`s, type annotations, `assert` statements (type narrowing only) and the bodies
of `__all__`. Logging: the target files log nothing.
"""

from __future__ import annotations

import ast
import copy
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

#: A string is SQL when it holds a statement keyword, a bound comparison or is an order word.
_SQL = re.compile(
    r"\b(SELECT|INSERT|DELETE FROM|UPDATE|CREATE|WHERE|ORDER BY|IS NULL|BETWEEN|LIMIT)\b"
    r"|[<>=] (?:\?|%\()|^(ASC|DESC|BEGIN IMMEDIATE| AND )$"
)

_COMPARE: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}


@dataclass(frozen=True)
class Mutant:
    """One change: its kind, its line, a short `old → new`, and the whole mutated source."""

    kind: str
    line: int
    change: str
    source: str


#: A bound parameter: sqlite3's `?` or psycopg's `%(name)s`.
_P = r"(\?|%\(\w+\)s)"


def _always_true(held: str) -> str:
    """A condition that is always true and binds the same parameters as `held`."""
    bound = re.findall(_P, held)
    if "%(" in held:
        return "(" + " OR ".join([f"{name}::text IS NULL" for name in bound] + ["TRUE"]) + ")"
    return "(" + " OR ".join([*bound, "1"]) + ")" if bound else "1"


def _sql_edits(text: str) -> Iterator[tuple[str, str, str]]:
    """Every SQL mutation of a string literal's source text, as (new text, old, new)."""
    # a WHERE condition with its operand(s), kept bindable: the same parameters, always true
    condition = re.compile(rf"(\{{\w+\}}|\b[a-z_.]+) (?:BETWEEN {_P} AND {_P}|(?:=|!=|<|<=|>|>=) {_P}|IS NULL)")
    rules: list[tuple[str, Callable[[re.Match[str]], str]]] = [
        (r"\bASC\b", lambda m: "DESC"),
        (r"\bDESC\b", lambda m: "ASC"),
        (rf"(?<![<>!]) = {_P}", lambda m: f" != {m.group(1)}"),
        (rf" <= {_P}", lambda m: f" < {m.group(1)}"),
        (rf" < {_P}", lambda m: f" <= {m.group(1)}"),
        (rf" >= {_P}", lambda m: f" > {m.group(1)}"),
        (rf" > {_P}", lambda m: f" >= {m.group(1)}"),
        (r"\bIS NULL\b", lambda m: "IS NOT NULL"),
        (r" AND ", lambda m: " OR "),
        (r" OR (?!REPLACE|IGNORE)", lambda m: " AND "),
        (r"\bmax\(", lambda m: "min("),
        (r"\bmin\(", lambda m: "max("),
        (rf"\bLIMIT {_P}", lambda m: f"LIMIT {m.group(1)} + 1"),
        (rf"\bOFFSET {_P}", lambda m: f"OFFSET {m.group(1)} + 1"),
        (r"\bLIMIT (\d+)", lambda m: f"LIMIT {int(m.group(1)) + 1}"),
        (r"(?<![\w{])(?<!LIMIT )\d+\b(?!\w)", lambda m: str(int(m.group(0)) + 1)),
        (r"INSERT OR REPLACE", lambda m: "INSERT OR IGNORE"),
        (r"BEGIN IMMEDIATE", lambda m: "BEGIN"),
        (r" FOR UPDATE\b", lambda m: ""),
        # drop the last key of a multi-key ORDER BY (the tie-breaker)
        (r"(ORDER BY [^L\"']*?), (\w+)( DESC| ASC)?(?= LIMIT|\"|')", lambda m: m.group(1)),
        # a one-key ORDER BY without direction gets DESC
        (r"(ORDER BY \w+)(?=\"| LIMIT|')", lambda m: m.group(1) + " DESC"),
    ]
    for pattern, replace in rules:
        for match in re.finditer(pattern, text):
            if match.group(0) == " AND " and re.search(rf"BETWEEN {_P}$", text[: match.start()]):
                continue  # the AND of BETWEEN x AND y is syntax, not logic
            new = replace(match)
            yield text[: match.start()] + new + text[match.end() :], match.group(0).strip(), new.strip()
    bound = "?" in text or "%(" in text
    if " WHERE " in text or text.strip("\"' f").startswith(("(", "{")) or (_SQL.search(text) and bound):
        for match in condition.finditer(text):
            held = match.group(0)
            if held.startswith(("SELECT", "FROM")):
                continue
            new = _always_true(held)
            yield text[: match.start()] + new + text[match.end() :], f"drop `{held}`", new


class _Finder(ast.NodeVisitor):
    """Collects (node, kind, replacement source) for every AST-level mutation."""

    def __init__(self) -> None:
        self.found: list[tuple[ast.AST, str, str]] = []
        self.docstrings: set[int] = set()

    def _add(self, node: ast.AST, kind: str, replacement: ast.AST | str) -> None:
        self.found.append((node, kind, replacement if isinstance(replacement, str) else ast.unparse(replacement)))

    def generic_visit(self, node: ast.AST) -> None:
        body = getattr(node, "body", None)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and body:
            first = body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                self.docstrings.add(id(first))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for statement in ast.walk(node):
                if statement is not node and isinstance(statement, ast.stmt):
                    self._statement(statement)
        for field, value in ast.iter_fields(node):
            if field in {"annotation", "returns", "decorator_list"}:
                continue
            for child in value if isinstance(value, list) else [value]:
                if isinstance(child, ast.AST):
                    self.visit(child)

    def _statement(self, node: ast.stmt) -> None:
        if id(node) in self.docstrings or isinstance(
            node, ast.Pass | ast.Assert | ast.Return | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
        ):
            return
        self._add(node, "delete", "pass")

    def visit_Import(self, node: ast.Import) -> None:
        return

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        return

    def visit_Assign(self, node: ast.Assign) -> None:
        if not any(isinstance(target, ast.Name) and target.id == "__all__" for target in node.targets):
            self.generic_visit(node)

    def visit_Expr(self, node: ast.Expr) -> None:
        if id(node) not in self.docstrings:
            self.generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> None:
        for index, operator in enumerate(node.ops):
            swapped = _COMPARE.get(type(operator))
            if swapped is not None:
                changed = copy.deepcopy(node)
                changed.ops[index] = swapped()
                self._add(node, "compare", changed)
        self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        changed = copy.deepcopy(node)
        changed.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        self._add(node, "boolean", changed)
        self.generic_visit(node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        if isinstance(node.op, ast.Not):
            self._add(node, "not", f"({ast.unparse(node.operand)})")
        self.generic_visit(node)

    def visit_Return(self, node: ast.Return) -> None:
        if node.value is not None and not (isinstance(node.value, ast.Constant) and node.value.value is None):
            self._add(node, "return", "return None")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, int) and not isinstance(value, bool):
            self._add(node, "number", ast.Constant(value + 1))
            if value != 0:
                self._add(node, "number", ast.Constant(value - 1))

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                self.visit(value.value)


def _strings(tree: ast.AST, skip: set[int]) -> Iterator[ast.Constant | ast.JoinedStr]:
    """Every string literal that is not a docstring, outside f-strings' own pieces."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            inside.update(id(value) for value in node.values)
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and id(node) in skip:
            inside.add(id(node.value))
    for node in ast.walk(tree):
        literal = isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in inside
        if literal or isinstance(node, ast.JoinedStr):
            yield node  # type: ignore[misc]


def _offsets(source: str) -> list[int]:
    starts, total = [0], 0
    for line in source.splitlines(keepends=True):
        total += len(line.encode("utf-8"))
        starts.append(total)
    return starts


def mutants(source: str) -> list[Mutant]:
    """Every compiling single-change mutant of `source`, in source order, without duplicates."""
    tree = ast.parse(source)
    finder = _Finder()
    finder.visit(tree)
    data = source.encode("utf-8")
    starts = _offsets(source)

    def span(node: ast.AST) -> tuple[int, int]:
        begin = starts[node.lineno - 1] + node.col_offset  # type: ignore[attr-defined]
        end = starts[node.end_lineno - 1] + node.end_col_offset  # type: ignore[attr-defined]
        return begin, end

    edits: list[tuple[int, str, int, int, str, str]] = []  # line, kind, begin, end, new text, change
    for node, kind, replacement in finder.found:
        begin, end = span(node)
        old = data[begin:end].decode("utf-8")
        shown = old.splitlines()[0] + (" …" if "\n" in old else "")
        edits.append((node.lineno, kind, begin, end, replacement, f"`{shown}` → `{replacement}`"))  # type: ignore[attr-defined]
    for node in _strings(tree, finder.docstrings):
        begin, end = span(node)
        text = data[begin:end].decode("utf-8")
        value = node.value if isinstance(node, ast.Constant) else ast.unparse(node)
        if not isinstance(value, str) or not _SQL.search(value):
            continue
        for new_text, old, new in _sql_edits(text):
            edits.append((node.lineno, "sql", begin, end, new_text, f"SQL `{old}` → `{new}`"))
    found: list[Mutant] = []
    seen: set[str] = {source}
    for line, kind, begin, end, new_text, change in sorted(edits, key=lambda edit: (edit[2], edit[1])):
        mutated = (data[:begin] + new_text.encode("utf-8") + data[end:]).decode("utf-8")
        if mutated in seen:
            continue
        try:
            compile(mutated, "<mutant>", "exec")
        except SyntaxError:
            continue
        seen.add(mutated)
        found.append(Mutant(kind=kind, line=line, change=change, source=mutated))
    return found
