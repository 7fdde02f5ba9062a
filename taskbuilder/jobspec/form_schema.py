"""How the job spec's models show in Prefect's launch form (the deployment's parameter schema).

Prefect's run form (the UI's schema form, Prefect 3.9) renders, per property: `properties` as fields, `anyOf`
as a type picker (one button per option, labelled with the option's `title`, the `$ref`'d definition's
for a reference) with the picked option's fields below, `allOf`, `$ref`, and the plain types. It has no case
for `oneOf`: pydantic's discriminated union (`oneOf` + `discriminator.mapping`) has no `type`, so the form
falls back to a raw JSON editor. An `object` without `properties` (a free mapping) is a JSON editor too.
Descriptions are rendered as Markdown, so a placeholder written `<key>` is read as an HTML tag and vanishes:
write it in backticks.

The pieces here change only the JSON schema; validation (the flow validates the job again and reports
every problem at once) and the dumped values (the job key) stay as they were:

- `FormChoice`: put on a discriminated union that is a list's item, the form shows each item as a type
  picker (the typed options as `anyOf`, no `discriminator`) with the picked type's fields; pydantic still
  picks the option by `type`.
- `form_default(value)`: the value the form proposes, when it differs from the default a spec file gets
  by leaving the field out (changing that one would change the job key of existing specs).
- `column_types_form_schema`: `dataset.column_types` as a list of `{column, type}` rows in the form.
"""

from __future__ import annotations

from typing import Any

COLUMN_TYPE_NAMES = ("text", "image_url", "audio_url", "video_url")


class FormChoice:
    """JSON-schema hook of a list item that is a discriminated union: in the form, each item is an object
    with one field, `key`, whose value is picked among the typed options (`anyOf`, see `_form_options`).

    The form renders a list's items through its plain input, which has no case for `anyOf` or `oneOf`
    (both become a JSON editor); a property of an object is rendered with the type picker. The value the
    form sends is `{key: {...}}`; `unwrap` (a `BeforeValidator`) takes the item out, so a spec file's list
    of plain items and the form's list mean the same.
    """

    def __init__(self, key: str, title: str) -> None:
        self.key = key
        self.title = title

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: Any) -> dict[str, Any]:
        schema = handler(core_schema)
        options = [dict(handler.resolve_ref_schema(option)) for option in schema.get("oneOf", [])]
        if not options:
            return schema
        picker = {"title": self.title, "anyOf": _form_options(options),
                  "description": "Pick the type; its fields appear below."}
        return {"type": "object", "title": self.title, "properties": {self.key: picker}}

    def unwrap(self, value: Any) -> Any:
        """`{key: item}` (the form's shape) → `item`; any other value unchanged."""
        if isinstance(value, dict) and set(value) == {self.key} and isinstance(value[self.key], dict):
            return value[self.key]
        return value

    def wrap(self, value: Any) -> Any:
        """`item` → `{key: item}`: a spec's item as the form shows it (for pre-filled launch parameters)."""
        return {self.key: value}


def _form_options(options: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The options in form order. The form picks the option of a given value (a pre-filled or re-run launch)
    by the most property names in common, the first on a tie, and cannot follow a `$ref` there: so the
    options are written out, and one whose properties are a subset of an earlier one's goes before it
    (`multiple_choice_with_free_text` before `multiple_choice`), else that earlier one would win the tie."""
    ordered: list[dict[str, Any]] = []
    for option in options:
        names = set(option.get("properties", {}))
        place = next((i for i, seen in enumerate(ordered) if names < set(seen.get("properties", {}))), len(ordered))
        ordered.insert(place, option)
    return ordered



def accept_hidden_fields(schema: dict[str, Any]) -> None:
    """`json_schema_extra` of the job: `additionalProperties: true`, so a launch that sends the fields the form
    leaves out (a whole spec's dump: `output_dir`, `wait_for_completion`, the retired rates) passes the
    server's parameter check; the flow validates the job itself and names any unknown field."""
    schema["additionalProperties"] = True


def form_default(value: Any) -> dict[str, Any]:
    """`Field(json_schema_extra=...)` that makes the form propose `value` (the model's default is unchanged)."""
    return {"default": value}


def column_types_form_schema(schema: dict[str, Any]) -> None:
    """`json_schema_extra` of `dataset.column_types`: a list of `{column, type}` rows (a free mapping would
    be a JSON editor in the form); the field accepts that list or the YAML mapping `{column: type}`."""
    row = {
        "type": "object",
        "title": "Column type",
        "properties": {
            "column": {"type": "string", "title": "Column", "description": "A displayed column of the file."},
            "type": {"type": "string", "title": "Type", "enum": list(COLUMN_TYPE_NAMES),
                     "description": "Its schema type (V4 datasets)."},
        },
        "required": ["column", "type"],
    }
    description = schema.get("description")
    schema.clear()
    schema.update({"anyOf": [{"type": "array", "title": "Columns", "items": row}, {"type": "null", "title": "None"}],
                   "default": None, "title": "Column Types"})
    if description:
        schema["description"] = description


def column_types_from_rows(value: Any) -> Any:
    """The form's rows `[{column, type}]` as the mapping `{column: type}`; any other value unchanged (a row
    without both keys is kept as given, so validation names it)."""
    if isinstance(value, list) and all(isinstance(row, dict) and set(row) == {"column", "type"} for row in value):
        return {row["column"]: row["type"] for row in value}
    return value
