"""Reading a job spec's YAML strictly, so that what reaches Prolific is what the user wrote.

PyYAML (a YAML 1.1 reader) is used for parsing; on top of its node tree this module:

- refuses a key written twice in one mapping, naming both lines (YAML keeps the last silently);
- caps the expanded size of the document at :data:`MAX_EXPANDED_VALUES` values, so an alias bomb
  ("billion laughs") or a recursive alias fails at once with a clear message instead of filling memory;
- refuses mapping keys that YAML would turn into something other than text (``yes:``, ``1:``);
- remembers every scalar as written (text, line, quoting), so :meth:`YamlDocument.validate` can give a
  text field exactly the characters the user wrote (``01`` stays ``01``, ``0123`` stays ``0123``, not the
  octal number 83) and can refuse a number written in a form YAML 1.1 reads differently from how it looks
  (``0300`` is 192, ``1:30`` is 90, ``1_000`` is 1000) where a number is expected, or anywhere in a
  pass-through field whose type the spec does not know.

Errors are :class:`YamlProblem` lists raised as :class:`StrictYamlError`; each names the line (1-based),
the field path and the quoting or rewrite to use.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

MAX_EXPANDED_VALUES = 20_000
"""Most values (scalars, lists and mappings, with every alias expanded) a spec may hold; real specs hold a
few hundred."""

MAX_DEPTH = 40
"""Deepest nesting a spec may have (batch_items, the deepest part, needs about 8 levels)."""

_STR = "tag:yaml.org,2002:str"
_NULL = "tag:yaml.org,2002:null"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_CANONICAL_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)")
_CANONICAL_FLOAT = re.compile(r"[-+]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?")
_CANONICAL_BOOL = ("true", "false", "True", "False", "TRUE", "FALSE")

Path = tuple  # a field path: mapping keys and list positions, e.g. ("study", "completion_codes", 0, "code")


@dataclass(frozen=True)
class Scalar:
    """A scalar as written in the file: its text, 1-based line, YAML's resolved tag, quoted or not."""

    text: str
    line: int
    tag: str
    plain: bool

    @property
    def retyped(self) -> bool:
        """True when YAML turned this plain scalar into something other than text (number, bool, date)."""
        return self.plain and self.tag not in (_STR, _NULL)

    @property
    def canonical(self) -> bool:
        """True when the value reads the same to a person and to YAML 1.1: plain decimal numbers, true/false."""
        if self.tag == _INT:
            return bool(_CANONICAL_INT.fullmatch(self.text))
        if self.tag == _FLOAT:
            return bool(_CANONICAL_FLOAT.fullmatch(self.text))
        if self.tag == _BOOL:
            return self.text in _CANONICAL_BOOL
        return self.tag in (_STR, _NULL)


@dataclass(frozen=True)
class YamlProblem:
    """One problem of a spec file: `line` (1-based, or None), the field `path` (dotted), what and what to do."""

    line: int | None
    path: str
    message: str
    hint: str


class StrictYamlError(ValueError):
    """The YAML text breaks one of this module's rules, or does not parse; `problems` lists every one found."""

    def __init__(self, problems: list[YamlProblem]):
        self.problems = problems
        super().__init__("; ".join(f"line {p.line}: {p.message}" if p.line else p.message for p in problems))

    def __reduce__(self):
        return (type(self), (self.problems,))


def dotted(path: Path) -> str:
    """("batch", "instructions", 0, "options") → "batch.instructions[0].options"."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_PART = re.compile(r"\[(\d+)\]|\.?([^.\[\]]+)")


def parse_dotted(text: str) -> Path:
    """"batch.instructions[0].options" → ("batch", "instructions", 0, "options") (the inverse of :func:`dotted`)."""
    return tuple(int(index) if index else name for index, name in _PART.findall(text))


def _quote_hint(key: Any, scalar: Scalar) -> str:
    text = scalar.text.replace('"', '\\"')
    return f'quote it to keep the text: {key}: "{text}"' if key is not None else f'quote it: "{text}"'


def _what_yaml_reads(value: Any, scalar: Scalar) -> str:
    if scalar.tag == _INT and scalar.text.lstrip("+-").startswith("0") and scalar.text.lstrip("+-") != "0":
        return f"the {'octal ' if not scalar.text.lstrip('+-').startswith(('0x', '0b')) else ''}number {value!r}"
    if scalar.tag == _BOOL:
        return f"the boolean {value!r}"
    if scalar.tag in (_INT, _FLOAT):
        return f"the number {value!r}"
    return f"the {type(value).__name__} {value!r}"


class YamlDocument:
    """A parsed spec: `data` (plain Python values, as YAML 1.1 typed them) and `scalars` (path → Scalar)."""

    def __init__(self, data: Any, scalars: dict[Path, Scalar], lines: dict[Path, int] | None = None):
        self.data = data
        self.scalars = scalars
        self.lines = lines or {}

    def adjust(self, change: Callable[[Any], None]) -> None:
        """Let `change(data)` edit the parsed data in place; values it replaced are no longer "as written"."""
        before = copy.deepcopy(self.data)
        change(self.data)
        for path in list(self.scalars):
            if _value_at(before, path) != _value_at(self.data, path):
                del self.scalars[path]

    def line_of(self, path: Path) -> int | None:
        """The line of the value at `path`, or of the nearest enclosing value that has one."""
        while path:
            if path in self.scalars:
                return self.scalars[path].line
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None

    def validate(self, validate: Callable[[Any], BaseModel], *, text_fields: Callable[[Path], bool] = lambda p: False) -> BaseModel:
        """Validate `data` with `validate` (e.g. a pydantic ``model_validate``) so that text stays as written.

        Every field the validated model holds as text (a ``str``) gets the scalar's own characters when YAML
        had typed it (``01`` → "01", ``yes`` → "yes", ``2026-01-01`` → "2026-01-01"); values the model keeps
        untyped (a pass-through ``extra`` field) keep YAML's type when it reads like the text (plain decimal,
        true/false) and are refused otherwise, unless `text_fields(path)` says the API takes them as text.
        Numbers in number fields written in a form YAML reads differently (``0300``, ``1:30``, ``1_000``,
        ``0x10``) are refused. Raises :class:`StrictYamlError` for those, and `validate`'s own error
        (e.g. ``pydantic.ValidationError``) for the rest.
        """
        substitutions: dict[Path, str] = {}
        for _ in range(3):  # a substitution can turn a failed union member into a match: re-check
            try:
                model = validate(self.data)
            except ValidationError as error:
                found = self._strings_refused(error)
                if not found.keys() - substitutions.keys():
                    raise
                self._substitute(found, substitutions)
                continue
            problems, found = self._walk_model(model, self.data, (), text_fields)
            if problems:
                raise StrictYamlError(problems)
            if not found.keys() - substitutions.keys():
                return model
            self._substitute(found, substitutions)
        return validate(self.data)

    # ------------------------------------------------------------------ internals

    def _substitute(self, found: dict[Path, str], done: dict[Path, str]) -> None:
        for path, text in found.items():
            parent = self.data
            for part in path[:-1]:
                parent = parent[part]
            parent[path[-1]] = text
            done[path] = text

    def _strings_refused(self, error: ValidationError) -> dict[Path, str]:
        """Retyped scalars where the model wanted a string and got a bool/date (pydantic refuses those)."""
        found = {}
        for item in error.errors(include_url=False):
            if item["type"] != "string_type":
                continue
            path = self._data_path(item["loc"])
            scalar = self.scalars.get(path) if path is not None else None
            if scalar is not None and scalar.retyped:
                found[path] = scalar.text
        return found

    def _data_path(self, loc: tuple) -> Path | None:
        """Pydantic's error location → the path in `data` (union tags, which are not in the data, dropped)."""
        node, path = self.data, []
        for part in loc:
            if isinstance(node, dict) and part in node:
                node = node[part]
                path.append(part)
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                node = node[part]
                path.append(part)
            elif isinstance(part, int) or isinstance(node, (dict, list)) and not isinstance(part, str):
                return None
        return tuple(path)

    def _walk_model(
        self, model: Any, data: Any, path: Path, text_fields: Callable[[Path], bool]
    ) -> tuple[list[YamlProblem], dict[Path, str]]:
        """Compare the validated `model` with the raw `data`: text to restore, and numbers to refuse."""
        problems: list[YamlProblem] = []
        found: dict[Path, str] = {}
        if isinstance(model, BaseModel) and isinstance(data, dict):
            fields = type(model).model_fields
            extra = model.model_extra or {}
            for key, value in data.items():
                if key in fields:
                    sub = self._walk_model(getattr(model, key), value, (*path, key), text_fields)
                elif key in extra:
                    sub = self._check_untyped(value, (*path, key), text_fields)
                else:
                    continue
                problems += sub[0]
                found.update(sub[1])
        elif isinstance(model, (list, tuple)) and isinstance(data, list):
            for i, (item, value) in enumerate(zip(model, data)):
                sub = self._walk_model(item, value, (*path, i), text_fields)
                problems += sub[0]
                found.update(sub[1])
        elif isinstance(model, dict) and isinstance(data, dict):
            for key, value in data.items():
                sub = self._walk_model(model.get(key), value, (*path, key), text_fields)
                problems += sub[0]
                found.update(sub[1])
        else:
            scalar = self.scalars.get(path)
            if scalar is not None and scalar.retyped:
                if isinstance(model, str):
                    if model != scalar.text:
                        found[path] = scalar.text
                elif isinstance(model, bool):
                    if scalar.tag != _BOOL:  # yes/no/on/off are YAML 1.1 booleans a reader reads as such
                        problems.append(self._kind_problem(path, data, scalar, "true or false"))
                elif isinstance(model, (int, float)):
                    if scalar.tag not in (_INT, _FLOAT):
                        problems.append(self._kind_problem(path, data, scalar, "a number in plain digits"))
                    elif not scalar.canonical:
                        problems.append(self._number_problem(path, data, scalar))
                elif not scalar.canonical:
                    problems.append(self._number_problem(path, data, scalar))
        return problems, found

    def _check_untyped(self, data: Any, path: Path, text_fields: Callable[[Path], bool]) -> tuple[list, dict]:
        """A pass-through value: every retyped scalar in it must read like its text, or be a text field."""
        problems, found = [], {}
        for sub_path, value in _leaves(data, path):
            scalar = self.scalars.get(sub_path)
            if scalar is None or not scalar.retyped:
                continue
            if text_fields(sub_path):
                found[sub_path] = scalar.text
            elif not scalar.canonical:
                key = sub_path[-1] if isinstance(sub_path[-1], str) else None
                problems.append(YamlProblem(
                    scalar.line, dotted(sub_path),
                    f"{scalar.text} is read by YAML as {_what_yaml_reads(value, scalar)}, not as written",
                    _quote_hint(key, scalar) + "; if a number is meant, write it in plain digits"))
        return problems, found

    def _kind_problem(self, path: Path, value: Any, scalar: Scalar, wanted: str) -> YamlProblem:
        return YamlProblem(scalar.line, dotted(path), f"{scalar.text} is read by YAML as {_what_yaml_reads(value, scalar)}, "
                           f"where {wanted} is expected", f"write {wanted}")

    def _number_problem(self, path: Path, value: Any, scalar: Scalar) -> YamlProblem:
        key = path[-1] if path and isinstance(path[-1], str) else None
        return YamlProblem(
            scalar.line, dotted(path),
            f"{scalar.text} is read by YAML as {_what_yaml_reads(value, scalar)}, which is not what it looks like",
            "write the number in plain digits (e.g. 300, 0.25) without leading zeros, '_' or ':'"
            + (f"; if it is text, quote it: {key}: \"{scalar.text}\"" if key else ""))


def _value_at(data: Any, path: Path) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return data


_MISSING = object()


def _leaves(data: Any, path: Path) -> Iterator[tuple[Path, Any]]:
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _leaves(value, (*path, i))
    else:
        yield path, data


class _Loader(yaml.SafeLoader):
    """SafeLoader; the checks are made on its node tree before anything is constructed."""


def read_yaml(text: str) -> YamlDocument:
    """Parse one YAML document strictly (rules in the module docstring) into a :class:`YamlDocument`.

    Raises :class:`StrictYamlError` listing every duplicate key, retyped key and the size cap (with lines),
    or the syntax error with its line and column.
    """
    loader = _Loader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            raise StrictYamlError([YamlProblem(
                mark.line + 1 if mark else None, "",
                f"YAML syntax error{f' at line {mark.line + 1}, column {mark.column + 1}' if mark else ''}: "
                f"{getattr(error, 'problem', None) or error}",
                "fix the YAML (indentation, a missing ':' or an unclosed quote)")]) from None
        if node is None:
            return YamlDocument(None, {})
        scalars: dict[Path, Scalar] = {}
        lines: dict[Path, int] = {}
        problems = _check_nodes(loader, node, scalars, lines)
        if problems:
            raise StrictYamlError(problems)
        data = loader.construct_document(node)
    finally:
        loader.dispose()
    return YamlDocument(data, scalars, lines)


def _check_nodes(loader: _Loader, root: yaml.Node, scalars: dict[Path, Scalar], lines: dict[Path, int]) -> list[YamlProblem]:
    """Walk the node tree with every alias expanded (at most MAX_EXPANDED_VALUES nodes): record scalars,
    find duplicate and retyped keys, and flatten merge keys (`<<`) once per mapping."""
    problems: list[YamlProblem] = []
    stack: list[tuple[yaml.Node, Path]] = [(root, ())]
    flattened: dict[int, list] = {}
    seen = 0
    while stack:
        node, path = stack.pop()
        seen += 1
        if seen > MAX_EXPANDED_VALUES:
            return [_too_big(node, path)]
        if len(path) > MAX_DEPTH:
            return [YamlProblem(node.start_mark.line + 1, dotted(path[:3]) + "...",
                                f"the spec nests values more than {MAX_DEPTH} levels deep (a recursive alias?)",
                                "write the values out; a job spec needs a few levels only")]
        lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.ScalarNode):
            scalars[path] = Scalar(node.value, node.start_mark.line + 1, node.tag, node.style is None)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((child, (*path, i)) for i, child in reversed(list(enumerate(node.value))))
        elif isinstance(node, yaml.MappingNode):
            if id(node) not in flattened:
                problems += _key_problems(loader, node, path)
                try:
                    _flatten(node, flattened, set())
                except _MergeTooBig:
                    return [_too_big(node, path)]
                except _MergeLoop as error:
                    return [YamlProblem(node.start_mark.line + 1, dotted(path), str(error),
                                        "merge (<<) only other mappings, or write the values out")]
            stack.extend((value_node, (*path, key_node.value)) for key_node, value_node in reversed(node.value)
                         if isinstance(key_node, yaml.ScalarNode))
    return problems


def _too_big(node: yaml.Node, path: Path) -> YamlProblem:
    return YamlProblem(node.start_mark.line + 1, dotted(path[:2]),
                       f"the spec expands to more than {MAX_EXPANDED_VALUES:,} values through YAML aliases "
                       "(*name repeats the value anchored with &name, << merges it)",
                       "write the values out, or use fewer and smaller aliases")


def _key_problems(loader: _Loader, node: yaml.MappingNode, path: Path) -> list[YamlProblem]:
    """Keys written twice, and keys YAML reads as something other than text, in one mapping as written."""
    problems = []
    first_line: dict[str, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == _MERGE:
            continue
        line = key_node.start_mark.line + 1
        if not isinstance(key_node, yaml.ScalarNode):
            problems.append(YamlProblem(line, dotted(path), "a key is a list or mapping", "keys are field names: write text"))
            continue
        if key_node.style is None and key_node.tag != _STR:
            key = loader.construct_object(key_node)
            problems.append(YamlProblem(line, dotted((*path, key_node.value)),
                                        f"the key {key_node.value} is read by YAML as {key!r}, not as text",
                                        f'quote it: "{key_node.value}":'))
            continue
        if key_node.value in first_line:
            problems.append(YamlProblem(
                line, dotted((*path, key_node.value)),
                f"{key_node.value} is given twice, on lines {first_line[key_node.value]} and {line}; "
                "YAML would keep the last one silently",
                "keep one of them"))
            continue
        first_line[key_node.value] = line
    return problems


_MERGE = "tag:yaml.org,2002:merge"


class _MergeTooBig(Exception):
    pass


class _MergeLoop(Exception):
    def __init__(self, message: str = "a merge key (<<) includes the mapping itself"):
        super().__init__(message)


def _key_of(key_node: yaml.Node) -> Any:
    return key_node.value if isinstance(key_node, yaml.ScalarNode) else id(key_node)


def _flatten(node: yaml.MappingNode, done: dict[int, list], active: set[int]) -> list:
    """Replace the mapping's pairs by the pairs YAML constructs: merged (`<<`) pairs first, each key once,
    its own pairs overriding them. Each mapping is flattened once (PyYAML's own merge copies pairs at every
    level, which an alias bomb of merges makes exponential)."""
    if id(node) in done:
        return done[id(node)]
    if id(node) in active:
        raise _MergeLoop
    active.add(id(node))
    pairs: dict[Any, tuple] = {}
    for key_node, value_node in node.value:
        if key_node.tag != _MERGE:
            continue
        sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                raise _MergeLoop("a merge key (<<) names something that is not a mapping")
            for pair in _flatten(source, done, active):
                pairs.setdefault(_key_of(pair[0]), pair)
    own = [(k, v) for k, v in node.value if k.tag != _MERGE]
    if len(pairs) + len(own) > MAX_EXPANDED_VALUES:
        raise _MergeTooBig
    for pair in own:
        pairs.pop(_key_of(pair[0]), None)
    node.value = [*pairs.values(), *own]
    active.discard(id(node))
    done[id(node)] = node.value
    return node.value
