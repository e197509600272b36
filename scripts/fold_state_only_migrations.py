"""Fold a migration of state-only changes (verbose names, help texts, choice labels, Meta names) into history.

    .venv/bin/python manage.py makemigrations crm -n names
    .venv/bin/python scripts/fold_state_only_migrations.py crm crm/migrations/00NN_names.py

Each `AlterField` / `AlterModelOptions` of the new migration replaces the field (or the options) in the operation
that last defined it (`CreateModel`, `AddField`, `AlterField`, `AlterModelOptions`, also inside
`SeparateDatabaseAndState`), and the new file is deleted once everything folded (what cannot be folded, behind a
rename or a deletion, stays in it). Why: every `AlterField` re-renders the model state, so the 643 of the
translatable-names change tripled a fresh `migrate` (20 -> 67 s of CPU; `make run`'s first start and every test
database). Only for changes the database never sees: check `sqlmigrate` prints no SQL first, and afterwards that
`makemigrations --check` finds nothing and a fresh database's `pg_dump -s` is unchanged (docs/architecture.md).
Databases migrated before keep working: Django records migrations by name and never re-reads applied ones.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

# The Meta options AlterModelOptions carries (django.db.migrations.operations.models.AlterModelOptions)
ALTER_OPTION_KEYS = {"base_manager_name", "default_manager_name", "default_related_name", "get_latest_by",
                     "managed", "ordering", "permissions", "default_permissions", "select_on_save",
                     "verbose_name", "verbose_name_plural"}
ENDS_A_MODEL = {"RenameModel", "DeleteModel"}


def keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((item.value for item in call.keywords if item.arg == name), None)


def argument(call: ast.Call, index: int, name: str) -> ast.expr | None:
    value = keyword(call, name)
    if value is None and len(call.args) > index:
        value = call.args[index]
    return value


def name_of(call: ast.Call) -> str | None:
    return call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", None)


def operations(tree: ast.Module) -> list[ast.expr]:
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            for statement in node.body:
                if isinstance(statement, ast.Assign) and getattr(statement.targets[0], "id", "") == "operations":
                    return statement.value.elts
    return []


def flat(ops: list[ast.expr]):
    """Operations in order, SeparateDatabaseAndState's state operations in place of it."""
    for op in ops:
        if not isinstance(op, ast.Call):
            continue
        if name_of(op) == "SeparateDatabaseAndState":
            state = keyword(op, "state_operations")
            if state is not None:
                yield from flat(state.elts)
        else:
            yield op


def lower(node: ast.expr | None) -> str:
    return node.value.lower() if isinstance(node, ast.Constant) and isinstance(node.value, str) else ""


def names_in(op: ast.Call) -> set[str]:
    return {lower(value) for value in [*op.args, *(item.value for item in op.keywords)]}


def span(source: str, node: ast.expr) -> tuple[int, int]:
    """Character offsets of `node` (ast gives lines and UTF-8 byte columns)."""
    lines = source.splitlines(keepends=True)

    def offset(line: int, column: int) -> int:
        return sum(len(text) for text in lines[:line - 1]) + len(lines[line - 1].encode()[:column].decode())

    return offset(node.lineno, node.col_offset), offset(node.end_lineno, node.end_col_offset)


class History:
    def __init__(self, files: list[Path]):
        self.files = files
        self.parsed = {path: (text, ast.parse(text)) for path in files for text in [path.read_text()]}

    def newest_first(self):
        for path in reversed(self.files):
            source, tree = self.parsed[path]
            for op in reversed(list(flat(operations(tree)))):
                yield path, source, op

    def field_definition(self, model: str, field: str):
        """(file, source, the field's expression) of the operation that last defined model.field, or None."""
        for path, source, op in self.newest_first():
            kind = name_of(op)
            if kind == "CreateModel" and lower(argument(op, 0, "name")) == model:
                for item in argument(op, 1, "fields").elts:
                    if item.elts[0].value == field:
                        return path, source, item.elts[1]
                return None
            if kind in ("AddField", "AlterField") and lower(argument(op, 0, "model_name")) == model \
                    and argument(op, 1, "name").value == field:
                return path, source, argument(op, 2, "field")
            if kind == "RenameField" and lower(argument(op, 0, "model_name")) == model and \
                    field in (argument(op, 1, "old_name").value, argument(op, 2, "new_name").value):
                return None
            if kind in ENDS_A_MODEL and model in names_in(op):
                return None
        return None

    def options_definition(self, model: str):
        """(file, source, operation) of the CreateModel or AlterModelOptions that last set model's options."""
        for path, source, op in self.newest_first():
            kind = name_of(op)
            if kind in ("AlterModelOptions", "CreateModel") and lower(argument(op, 0, "name")) == model:
                return path, source, op
            if kind in ENDS_A_MODEL and model in names_in(op):
                return None
        return None


def main(app: Path, new: Path) -> None:
    history = History(sorted(p for p in (app / "migrations").glob("[0-9]*.py") if p.name < new.name))
    new_source = new.read_text()
    new_imports = [line for line in new_source.splitlines() if line.startswith(("import ", "from "))]
    edits: dict[Path, list[tuple[int, int, str]]] = {path: [] for path in history.files}
    left = []
    for op in operations(ast.parse(new_source)):
        kind = name_of(op)
        if kind == "AlterField":
            found = history.field_definition(lower(argument(op, 0, "model_name")), argument(op, 1, "name").value)
            if found:
                path, source, expression = found
                edits[path].append((*span(source, expression),
                                    ast.get_source_segment(new_source, argument(op, 2, "field"))))
                continue
        elif kind == "AlterModelOptions":
            options = argument(op, 1, "options")
            found = history.options_definition(lower(argument(op, 0, "name")))
            if found:
                path, source, target = found
                text = ast.get_source_segment(new_source, options)
                old = argument(target, 1, "options") if name_of(target) == "AlterModelOptions" \
                    else keyword(target, "options")
                if name_of(target) == "AlterModelOptions":
                    edits[path].append((*span(source, old), text))
                elif old is None:  # CreateModel(name, fields, ...) without options: add them after the fields
                    end = span(source, argument(target, 1, "fields"))[1]
                    edits[path].append((end, end, ",\n            options=" + text))
                else:  # keep CreateModel's own options (indexes, constraints...), replace the alterable ones
                    kept = [f"{ast.get_source_segment(source, key)}: {ast.get_source_segment(source, value)}"
                            for key, value in zip(old.keys, old.values, strict=True) if key.value not in ALTER_OPTION_KEYS]
                    added = [f"{ast.get_source_segment(new_source, key)}: {ast.get_source_segment(new_source, value)}"
                             for key, value in zip(options.keys, options.values, strict=True)]
                    edits[path].append((*span(source, old), "{" + ", ".join(added + kept) + "}"))
                continue
        left.append(ast.get_source_segment(new_source, op))

    for path, changes in edits.items():
        if not changes:
            continue
        source = history.parsed[path][0]
        for start, end, text in sorted(changes, reverse=True):
            source = source[:start] + text + source[end:]
        missing = [line for line in new_imports if line not in source and (
            ((match := re.match(r"import ([\w.]+)$", line)) and re.search(re.escape(match.group(1)) + r"\.", source))
            or (line == "from django.conf import settings" and "settings." in source))]
        if missing:
            lines = source.splitlines(keepends=True)
            first = next(i for i, line in enumerate(lines) if line.startswith(("import ", "from ")))
            source = "".join(lines[:first]) + "".join(line + "\n" for line in missing) + "".join(lines[first:])
        path.write_text(source)
        print(f"folded {len(changes)} into {path}")

    if left:
        start = new_source.index("    operations = [")
        new.write_text(new_source[:start] + "    operations = [\n"
                       + "".join(f"        {text},\n" for text in left) + "    ]\n")
        print(f"{len(left)} operation(s) left in {new}")
    else:
        new.unlink()
        print(f"everything folded: {new} removed")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
