"""The legacy instructions endpoints of a batch (API doc §4): GET, POST (append), PUT (full replacement).

Deprecated: every answer carries ``Deprecation``/``Sunset`` headers; a batch with ``batch_items``
answers 422; with the setting ``legacy_instructions: "retired"`` every call answers 410 Gone.
"""

from __future__ import annotations

from sandbox import batches
from sandbox.ids import iso, uuid7
from sandbox.instructions import legacy_problems
from sandbox.state import State
from sandbox.web import ApiError, Request, Response, json_response

LEGACY_HEADERS = {"Deprecation": "true", "Sunset": "Tue, 01 Sep 2026 23:59:59 GMT"}
# Fields an instruction keeps, by type (API doc §4.2/§4.3); anything else in a request is ignored.
COMMON_INSTRUCTION_FIELDS = ("type", "description", "order", "helper_text", "placeholder_text_input",
                             "created_by", "answer_limit")
INSTRUCTION_FIELDS = {
    "free_text": ("validation",),
    "multiple_choice": ("options", "disable_dropdown"),
    "multiple_choice_with_free_text": ("options", "disable_dropdown"),
    "free_text_with_unit": ("unit_options", "unit_position", "default_unit"),
    "file_upload": ("accepted_file_types", "max_file_size_mb", "min_file_count", "max_file_count"),
}


def _keep_known_fields(item: dict) -> dict:
    names = COMMON_INSTRUCTION_FIELDS + INSTRUCTION_FIELDS[item["type"]]
    return {name: item[name] for name in names if name in item}


def legacy_batch(sb: State, req: Request) -> dict:
    """The batch of a legacy instructions call; 410 when retired, 422 on a ``batch_items`` batch."""
    if sb.settings.legacy_instructions == "retired":
        raise ApiError(410, "The instructions endpoint has been retired (Sunset: Tue, 01 Sep 2026 23:59:59 GMT); "
                            "define instructions with batch_items on the batch (PATCH the batch).",
                       headers=LEGACY_HEADERS)
    batch = batches.get_batch(sb, req.params["batch_id"])
    if batch.get("batch_items") is not None:
        raise ApiError(422, "This batch uses batch_items; the legacy instructions endpoint cannot be used on it.",
                       headers=LEGACY_HEADERS)
    return batch


def legacy_body(sb: State, req: Request) -> list[dict]:
    """The ``instructions`` list of the body; 400 naming ``instructions[i].field`` when invalid."""
    body = req.json_object()
    problems = legacy_problems(body.get("instructions"))
    if problems:
        raise ApiError(400, problems, headers=LEGACY_HEADERS)
    return body["instructions"]


def new_instruction(sb: State, batch: dict, item: dict, order: int) -> dict:
    """A stored instruction made from a request item, with a new id."""
    return {**_keep_known_fields(item), "order": item.get("order", order), "id": uuid7(),
            "batch_id": batch["id"], "created_at": iso(), "created_by": item.get("created_by") or sb.user_id()}


def get_instructions(sb: State, req: Request) -> Response:
    """``GET …/batches/{id}/instructions`` (§4) → ``{results, meta}`` with the legacy headers."""
    batch = legacy_batch(sb, req)
    items = batches.task_instructions(batch)
    return json_response(200, {"results": items, "meta": {"count": len(items)}}, LEGACY_HEADERS)


def post_instructions(sb: State, req: Request) -> Response:
    """``POST …/batches/{id}/instructions`` ``{instructions}`` (§4) → 201 the created instructions."""
    batch = legacy_batch(sb, req)
    items = legacy_body(sb, req)
    batches.refuse_if_in_use(sb, batch, "instructions")
    created = [new_instruction(sb, batch, item, len(batch["instructions"]) + i + 1) for i, item in enumerate(items)]
    batch["instructions"].extend(created)
    batches.count_instructions(batch)
    sb.store.put("batch", batch)
    return json_response(201, created, LEGACY_HEADERS)


def put_instructions(sb: State, req: Request) -> Response:
    """``PUT …/batches/{id}/instructions`` ``{instructions}`` (§4): full replacement → 200 the list."""
    batch = legacy_batch(sb, req)
    items = legacy_body(sb, req)
    batches.refuse_if_in_use(sb, batch, "instructions")
    existing = {item["id"]: item for item in batch["instructions"]}
    replaced = []
    for i, item in enumerate(items):
        if "id" in item:
            if item["id"] not in existing:
                raise ApiError(400, {f"instructions[{i}].id": [f"no instruction {item['id']!r} on this batch"]},
                               headers=LEGACY_HEADERS)
            old = existing[item["id"]]
            replaced.append({**_keep_known_fields(item), "order": item.get("order", i + 1), "id": old["id"],
                             "batch_id": batch["id"], "created_at": old["created_at"],
                             "created_by": item.get("created_by") or old["created_by"]})
        else:
            replaced.append(new_instruction(sb, batch, item, i + 1))
    batch["instructions"] = replaced
    batches.count_instructions(batch)
    sb.store.put("batch", batch)
    return json_response(200, batches.task_instructions(batch), LEGACY_HEADERS)
