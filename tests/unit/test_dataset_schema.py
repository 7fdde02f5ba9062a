"""Unit tests of the V4 schema and the seed-layout conversion (taskbuilder.dataset_schema)."""

from __future__ import annotations

import pytest

from taskbuilder.dataset_schema import displayed_columns, field_types, schema_body

COLUMNS = ["id", "review_text", "photo", "META_gold", "META_TASK_GROUP_ID", "product_name"]


def test_types_follow_the_columns_and_the_spec():
    types = field_types(COLUMNS, id_column="id", column_types={"photo": "image_url"})
    assert types == {"id": "metadata", "review_text": "text", "photo": "image_url", "META_gold": "metadata",
                     "META_TASK_GROUP_ID": "task_group_id", "product_name": "text"}
    assert list(types) == COLUMNS
    assert displayed_columns(types) == ["review_text", "photo", "product_name"]
    assert schema_body(types)["fields"]["photo"] == {"type": "image_url"} and schema_body(types)["strict"] is False


@pytest.mark.parametrize(("column_types", "message"), [
    ({"picture": "image_url"}, "'picture', which is not a column"),
    ({"photo": "pdf_url"}, "not one of"),
    ({"META_gold": "text"}, "hidden from participants"),
    ({"id": "image_url"}, "hidden from participants"),
])
def test_bad_column_types_name_the_column(column_types, message):
    with pytest.raises(ValueError, match=message):
        field_types(COLUMNS, id_column="id", column_types=column_types)
