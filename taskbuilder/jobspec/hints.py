"""Field paths and hints for pydantic's errors on a job spec: `('batch', 'instructions', 1, ...)` →
`batch.instructions[1]...`, "did you mean ...?" for a misspelled field or instruction type (`closest`), and a
hint from the field's own description.

The functions that read fields take `root`, the model that was validated (`AnnotationJob`), and walk its
fields, so this module imports no spec part.
"""

from __future__ import annotations

import difflib
from typing import Any, get_args, get_origin

from pydantic import BaseModel

TAGS = {"multiple_choice", "multiple_choice_with_free_text", "free_text", "free_text_with_unit", "file_upload",
         "rich_text", "image", "dataset_field"}


def loc_to_path(loc: tuple) -> str:
    """('batch','instructions',1,'multiple_choice','options',2,'value') → 'batch.instructions[1].options[2].value'."""
    path = ""
    previous: Any = None
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif isinstance(previous, int) and part in TAGS:
            pass  # the discriminated union's tag, not a field
        else:
            path = f"{path}.{part}" if path else str(part)
        previous = part
    return path


def _field_info(root: type[BaseModel], loc: tuple):
    """The pydantic FieldInfo at `loc` below `root` (walking models, lists, optionals and tagged unions), or None."""
    model: Any = root
    info = None
    annotation: Any = None  # the annotation of the last field, still to be entered
    for part in loc:
        if isinstance(part, int):
            continue
        if annotation is not None:
            model = _model_in(annotation, part)
            annotation = None
            if model is None:
                return None
            if part in TAGS and part not in model.model_fields:
                continue
        info = model.model_fields.get(part)
        if info is None:
            return None
        annotation = info.annotation
    return info


def _model_in(annotation: Any, tag: str) -> Any:
    """The pydantic model inside `annotation` (list/Optional/Annotated/Union), choosing the union member by `tag`."""
    candidates = []
    stack = [annotation]
    while stack:
        ann = stack.pop()
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            candidates.append(ann)
        elif get_origin(ann) is not None or get_args(ann):
            stack.extend(get_args(ann))
    if len(candidates) == 1:
        return candidates[0]
    for model in candidates:
        type_field = model.model_fields.get("type")
        if type_field is not None and tag in get_args(type_field.annotation):
            return model
    return None


def closest(word: str, choices: list[str], cutoff: float = 0.75) -> str | None:
    """The choice that `word` most likely misspells (difflib ratio ≥ `cutoff`, case ignored), or None."""
    lowered = {choice.lower(): choice for choice in choices}
    found = difflib.get_close_matches(str(word).lower(), list(lowered), n=1, cutoff=cutoff)
    return lowered[found[0]] if found else None


def _allowed_fields(root: type[BaseModel], loc: tuple) -> list[str]:
    """The field names allowed beside the last part of `loc` (the model that holds it), or []."""
    parent = _field_info(root, loc[:-1])
    model = root if len(loc) == 1 else (_model_in(parent.annotation, str(loc[-2])) if parent else None)
    return list(model.model_fields) if model is not None else []


def message_for(root: type[BaseModel], error: dict) -> str:
    """Pydantic's message, reworded where it speaks pydantic: an unknown field, an unknown instruction type."""
    kind, loc = error["type"], error["loc"]
    if kind == "extra_forbidden":
        near = closest(str(loc[-1]), _allowed_fields(root, loc))
        return f"{loc[-1]} is not a field here" + (f"; did you mean {near}?" if near else "")
    if kind == "union_tag_invalid":
        tag = str((error.get("ctx") or {}).get("tag", ""))
        near = closest(tag, sorted(TAGS))
        return f"{tag!r} is not an instruction type" + (f"; did you mean {near}?" if near else "")
    return error["msg"]


def hint_for(root: type[BaseModel], error: dict) -> str:
    kind = error["type"]
    loc = error["loc"]
    if kind == "extra_forbidden" and "token" in str(loc[-1]).lower():
        return "the API token is never part of the spec: set PROLIFIC_API_TOKEN or name a Prefect Secret block in token_secret_block"
    if kind == "extra_forbidden":
        allowed = ", ".join(_allowed_fields(root, loc))
        return f"remove it or fix its spelling; allowed here: {allowed}" if allowed else "remove it or fix its spelling"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        return "set type to one of: " + error.get("ctx", {}).get("expected_tags", ", ".join(sorted(TAGS)))
    info = _field_info(root, loc)
    described = info.description if info is not None and info.description else ""
    if kind == "missing":
        return f"add it: {described}" if described else "add it"
    if kind == "string_type" and isinstance(error.get("input"), bool):
        return "YAML reads yes/no/true/false as booleans: put the text in quotes"
    return described
