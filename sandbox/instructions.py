"""Instruction validation (API doc §4.2-4.3; now §3.3): one instruction of any of the five types.

``instruction_problems`` returns ``[(field, message)]``; the legacy endpoints turn those into a 400,
the layout rules (``layout.py``) into 422 ``INVALID_BATCH_ITEMS`` issues.
"""

from __future__ import annotations

from typing import Any

INSTRUCTION_TYPES = ("free_text", "multiple_choice", "multiple_choice_with_free_text",
                     "free_text_with_unit", "file_upload")
CHOICE_TYPES = ("multiple_choice", "multiple_choice_with_free_text")
CONTENT_TYPES = ("rich_text", "image")
DATASET_FIELD = "dataset_field"

Problems = list[tuple[str, str]]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _text(item: dict, name: str, problems: Problems, *, required: bool) -> None:
    if name not in item or item[name] is None:
        if required:
            problems.append((name, f"{name} is required"))
        return
    if not isinstance(item[name], str):
        problems.append((name, f"{name} must be a string"))
    elif required and not item[name].strip():
        problems.append((name, f"{name} must not be blank"))


def instruction_problems(item: Any) -> Problems:
    """Problems of one instruction (any of the five types); empty when it is valid.

    Rules (API doc §4.2/§4.3): ``type`` and ``description`` required; choice types need non-empty
    ``options`` with string ``label``/``value``, unique values, ``heading`` on each
    ``multiple_choice_with_free_text`` option, and ``answer_limit`` = 1, -1 or 1..len(options);
    ``free_text`` ``validation`` = ``{"type": "string", min, max}``; ``free_text_with_unit`` needs >= 2
    ``unit_options``, ``unit_position`` prefix|suffix, ``default_unit`` among the unit values;
    ``file_upload`` extensions start with ".", ``max_file_size_mb`` > 0, 1 <= min <= max file count.
    """
    if not isinstance(item, dict):
        return [("", "an instruction must be a JSON object")]
    problems: Problems = []
    kind = item.get("type")
    if kind not in INSTRUCTION_TYPES:
        return [("type", f"type must be one of {', '.join(INSTRUCTION_TYPES)}; got {kind!r}")]
    _text(item, "description", problems, required=True)
    for name in ("helper_text", "placeholder_text_input", "created_by"):
        _text(item, name, problems, required=False)
    if "order" in item and not _is_int(item["order"]):
        problems.append(("order", "order must be an integer"))
    if kind in CHOICE_TYPES:
        _choice_problems(item, kind, problems)
    elif "answer_limit" in item and not _is_int(item["answer_limit"]):
        problems.append(("answer_limit", "answer_limit must be an integer"))
    if kind == "free_text":
        _bounds_problems(item.get("validation"), "validation", "string", problems)
    elif kind == "free_text_with_unit":
        _unit_problems(item, problems)
    elif kind == "file_upload":
        _file_problems(item, problems)
    return problems


def _choice_problems(item: dict, kind: str, problems: Problems) -> None:
    options = item.get("options")
    if not isinstance(options, list) or not options:
        problems.append(("options", "options must be a non-empty list"))
        options = []
    seen: set[str] = set()
    for i, option in enumerate(options):
        if not isinstance(option, dict):
            problems.append((f"options[{i}]", "an option must be an object"))
            continue
        needed = ("label", "value", "heading") if kind == "multiple_choice_with_free_text" else ("label", "value")
        for name in needed:
            value = option.get(name)
            if not isinstance(value, str) or not value.strip():
                problems.append((f"options[{i}].{name}", f"{name} is required and must be a non-blank string"))
        if "exclusive" in option and not isinstance(option["exclusive"], bool):
            problems.append((f"options[{i}].exclusive", "exclusive must be a boolean"))
        value = option.get("value")
        if isinstance(value, str):
            if value in seen:
                problems.append((f"options[{i}].value", f"duplicate option value {value!r}"))
            seen.add(value)
    if "disable_dropdown" in item and not isinstance(item["disable_dropdown"], bool):
        problems.append(("disable_dropdown", "disable_dropdown must be a boolean"))
    limit = item.get("answer_limit")
    if limit is None:
        problems.append(("answer_limit", "answer_limit is required for choice instructions"))
    elif not _is_int(limit):
        problems.append(("answer_limit", "answer_limit must be an integer"))
    elif not (limit == -1 or 1 <= limit <= max(len(options), 1)):
        problems.append(("answer_limit",
                         f"answer_limit must be 1, -1 (unlimited) or at most the {len(options)} options; got {limit}"))


def _bounds_problems(validation: Any, field: str, kind: str, problems: Problems) -> None:
    if validation is None:
        return
    if not isinstance(validation, dict):
        problems.append((field, "validation must be an object"))
        return
    if validation.get("type", kind) != kind:
        problems.append((f"{field}.type", f"validation type must be {kind!r}"))
    check = _is_int if kind == "string" else _is_number
    bounds = {}
    for name in ("min", "max"):
        if validation.get(name) is None:
            continue
        if not check(validation[name]) or (kind == "string" and validation[name] < 0):
            problems.append((f"{field}.{name}", f"{name} must be a {'non-negative integer' if kind == 'string' else 'number'}"))
        else:
            bounds[name] = validation[name]
    if "min" in bounds and "max" in bounds and bounds["min"] > bounds["max"]:
        problems.append((field, "min must not exceed max"))


def _unit_problems(item: dict, problems: Problems) -> None:
    units = item.get("unit_options")
    if not isinstance(units, list) or len(units) < 2:
        problems.append(("unit_options", "unit_options must list at least 2 units"))
        units = units if isinstance(units, list) else []
    values = []
    for i, unit in enumerate(units):
        if not isinstance(unit, dict):
            problems.append((f"unit_options[{i}]", "a unit option must be an object"))
            continue
        for name in ("label", "value"):
            if not isinstance(unit.get(name), str) or not unit[name].strip():
                problems.append((f"unit_options[{i}].{name}", f"{name} is required and must be a non-blank string"))
        if isinstance(unit.get("value"), str):
            if unit["value"] in values:
                problems.append((f"unit_options[{i}].value", f"duplicate unit value {unit['value']!r}"))
            values.append(unit["value"])
        _bounds_problems(unit.get("validation"), f"unit_options[{i}].validation", "number", problems)
    if item.get("unit_position") not in ("prefix", "suffix"):
        problems.append(("unit_position", "unit_position is required: 'prefix' or 'suffix'"))
    if item.get("default_unit") is not None and item["default_unit"] not in values:
        problems.append(("default_unit", "default_unit must be the value of one of the unit_options"))


def _file_problems(item: dict, problems: Problems) -> None:
    types = item.get("accepted_file_types")
    if types is not None:
        if not isinstance(types, list) or not types:
            problems.append(("accepted_file_types", "accepted_file_types must be a non-empty list"))
        else:
            for i, ext in enumerate(types):
                if not isinstance(ext, str) or not ext.startswith(".") or len(ext) < 2:
                    problems.append((f"accepted_file_types[{i}]", "an extension must start with '.', e.g. '.png'"))
    size = item.get("max_file_size_mb")
    if size is not None and (not _is_number(size) or size <= 0):
        problems.append(("max_file_size_mb", "max_file_size_mb must be a number > 0"))
    counts = {}
    for name in ("min_file_count", "max_file_count"):
        value = item.get(name)
        if value is None:
            continue
        if not _is_int(value) or value < 1:
            problems.append((name, f"{name} must be an integer >= 1"))
        else:
            counts[name] = value
    if counts.get("min_file_count", 1) > counts.get("max_file_count", counts.get("min_file_count", 1)):
        problems.append(("max_file_count", "max_file_count must be >= min_file_count"))


def legacy_problems(instructions: Any, prefix: str = "instructions") -> dict[str, list[str]]:
    """``{"instructions[i].field": [messages]}`` for a legacy instructions list (empty = valid)."""
    if not isinstance(instructions, list) or not instructions:
        return {prefix: ["instructions must be a non-empty list"]}
    detail: dict[str, list[str]] = {}
    for i, item in enumerate(instructions):
        for field, message in instruction_problems(item):
            path = f"{prefix}[{i}]" + (f".{field}" if field else "")
            detail.setdefault(path, []).append(message)
    return detail
