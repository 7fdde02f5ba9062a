"""The pieces every part of the job spec shares: the base model, non-blank text, whole numbers, duplicates,
path resolution, and the error our own checks raise inside pydantic validation.

A check reports `(sub-path, message, hint)` triples through `fail(...)`; `SpecError.from_validation_error`
(`taskbuilder/jobspec/problems.py`) turns them into `SpecProblem`s with full field paths.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, ValidationInfo, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError


def fail(problems: list[tuple[str, str, str]]) -> PydanticCustomError:
    """Our checks' error: `problems` are (sub-path relative to the validated value, message, hint)."""
    message = "; ".join(f"{p[0]}: {p[1]}" if p[0] else p[1] for p in problems)
    return PydanticCustomError("spec_problem", "{summary}", {"summary": message, "problems": problems})


def join_path(path: str, subpath: str) -> str:
    """`path` + `subpath` as one field path: `a` + `b[1]` → `a.b[1]`, `a` + `[2]` → `a[2]`."""
    if not subpath:
        return path
    if subpath.startswith("["):
        return f"{path}{subpath}"
    return f"{path}.{subpath}" if path else subpath


def validate_with_raw_checks(handler: Any, data: Any, problems: list[tuple[str, str, str]], title: str) -> Any:
    """Run pydantic's `handler(data)` and report `problems` (checks made on the raw input) together with any
    field errors, so one bad field does not hide the other problems of the same spec section."""
    try:
        model = handler(data)
    except ValidationError as error:
        if not problems:
            raise
        details = []
        for item in error.errors(include_url=False):
            kind = item["type"]
            if kind == "spec_problem":
                kind = PydanticCustomError("spec_problem", "{summary}", item["ctx"])
            detail = InitErrorDetails(type=kind, loc=item["loc"], input=item["input"])
            if "ctx" in item and not isinstance(kind, PydanticCustomError):
                detail["ctx"] = item["ctx"]
            details.append(detail)
        details.append(InitErrorDetails(type=fail(problems), loc=(), input=data))
        raise ValidationError.from_exception_data(title, details) from None
    if problems:
        raise fail(problems)
    return model


def raw_number(value: Any) -> float | None:
    """A raw YAML number (not bool), else None: raw checks skip values the field validators refuse anyway."""
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _not_blank(value: str) -> str:
    if not value.strip():
        raise fail([("", "must not be empty or blank", "write the text (spaces alone do not count)")])
    return value


NonBlank = Annotated[str, AfterValidator(_not_blank)]


class SpecModel(BaseModel):
    """Base of the spec's sections: unknown fields refused, numbers read as text where text is expected."""

    # YAML writes `value: 1` as a number; option values and labels are text, so numbers become strings.
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, validate_default=True)

    @model_validator(mode="before")
    @classmethod
    def _switches_are_true_or_false(cls, data: Any) -> Any:
        """A true/false field takes only a boolean: pydantic would read ``"1"``, ``"y"``, ``"on"`` or ``"true"``
        (text) as true, and a switch such as ``publish`` spends money. YAML's own booleans stay (``true``,
        ``yes``/``no`` and ``on``/``off`` are booleans in YAML 1.1, the reader's dialect)."""
        if not isinstance(data, dict):
            return data
        problems = [
            (name, f"must be true or false, got {data[name]!r}", "write true or false without quotes")
            for name, field in cls.model_fields.items()
            if field.annotation in _BOOL_ANNOTATIONS and name in data and data[name] is not None
            and not isinstance(data[name], bool)
        ]
        if problems:
            raise fail(problems)
        return data


_BOOL_ANNOTATIONS = (bool, bool | None)


def whole_number(value: Any, what: str, hint: str) -> Any:
    """Accept an int (or a float/str holding a whole number); refuse fractions and booleans with `hint`."""
    if isinstance(value, bool):
        raise fail([("", f"{what} must be a whole number, got {value!r}", hint)])
    if isinstance(value, float):
        if not value.is_integer():
            raise fail([("", f"{what} must be a whole number, got {value!r}", hint)])
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise fail([("", f"{what} must be a whole number, got {value!r}", hint)]) from None
    return value


def positive_whole_number(value: Any, what: str, hint: str, below_one_hint: str) -> Any:
    """`whole_number(value, what, hint)`, and a number below 1 refused as `<what> is <value>` with `below_one_hint`."""
    value = whole_number(value, what, hint)
    if isinstance(value, int) and value < 1:
        raise fail([("", f"{what} is {value}", below_one_hint)])
    return value


def duplicates(values: list) -> dict[Any, list[int]]:
    """Each value seen more than once → its positions."""
    seen: dict[str, list[int]] = {}
    for i, v in enumerate(values):
        seen.setdefault(v, []).append(i)
    return {v: idx for v, idx in seen.items() if len(idx) > 1}


def resolve_path(value: str, info: ValidationInfo) -> str:
    """Resolve a relative path against `context["base_dir"]` (the spec's folder); keep s3:// URLs."""
    if value.startswith("s3://"):
        return value
    base = (info.context or {}).get("base_dir")
    path = Path(value).expanduser()
    if base is not None and not path.is_absolute():
        path = Path(base) / path
    return str(path)
