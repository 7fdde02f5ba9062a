"""The ``batch_items`` layout of a batch (now §3 of ../shared/docs/prolific-api-current.md): its rules, its
server-assigned ids, and the instructions it holds.

``batch_items_issues`` returns the 422 ``INVALID_BATCH_ITEMS`` issues (now §3.5): each with zero-based
``page``/``row``/``column``/``item`` down to the level at fault, the item ``type``, ``field`` on
dataset-field issues, and a ``message``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from sandbox.instructions import CONTENT_TYPES, DATASET_FIELD, INSTRUCTION_TYPES, instruction_problems

DISPLAYABLE_TYPES = ("text", "image_url", "audio_url", "video_url")
POSITIONS = (None, "body", "intro", "outro")
CONTENT_ONLY = 'Pages with display_position "intro" or "outro" may only contain image or rich_text content blocks'
NEEDS_V4 = "dataset_field items require a V4 dataset with a schema"
NO_SUCH_FIELD = "Field does not exist in the dataset schema"
ONCE_PER_PAGE = "the same field may not be referenced more than once on the same page"
LEVELS = {"rows": "columns", "columns": "items", "items": None}


@dataclass
class DatasetView:
    """What the rules need of the batch's dataset: its version, and for V4 its schema's ``{field: type}``
    (None while no schema is set)."""

    version: int
    fields: dict[str, str] | None = None


def batch_items_issues(pages: Any, dataset: DatasetView | None, known_ids: set[str] | None = None,
                       v3_dataset_fields: bool = False) -> list[dict]:
    """The 422 issues of a ``batch_items`` value (now §3.1-§3.5); empty = valid.

    Structure: a non-empty list of pages with ``rows``; a row has 1 or 2 ``columns``; a column has 1 or
    more ``items``; ``display_position`` is ``body``, ``intro`` or ``outro`` (or absent); intro/outro pages
    hold content blocks only. ``dataset_field`` items: checked when ``dataset`` is known (a batch without a
    dataset is checked again at setup): a V3 dataset refuses them (unless ``v3_dataset_fields``, the seed-era
    sandbox's leniency), a V4 one needs a schema field of a displayable type, each at most once per page.
    Ids: an ``id`` must be one of ``known_ids`` (the ids of the batch's current layout), and appear once.
    """
    if not isinstance(pages, list) or not pages:
        return [{"type": "batch_items", "message": "batch_items must be a non-empty list of pages"}]
    checker = _Checker(dataset, known_ids or set(), v3_dataset_fields)
    for p, page in enumerate(pages):
        checker.page(p, page)
    return checker.issues


class _Checker:
    def __init__(self, dataset: DatasetView | None, known_ids: set[str], v3_dataset_fields: bool) -> None:
        self.dataset = dataset
        self.known_ids = known_ids
        self.v3_dataset_fields = v3_dataset_fields
        self.seen_ids: set[str] = set()
        self.issues: list[dict] = []

    def _id(self, node: dict, where: dict, kind: str) -> None:
        given = node.get("id")
        if given is None:
            return
        if not isinstance(given, str) or given not in self.known_ids:
            self.issues.append({**where, "type": kind, "message": f"id {given!r} is not an id of this batch's layout; "
                                                                   "omit id to add a new entry"})
        elif given in self.seen_ids:
            self.issues.append({**where, "type": kind, "message": f"id {given!r} appears twice"})
        else:
            self.seen_ids.add(given)

    def page(self, p: int, page: Any) -> None:
        where = {"page": p}
        if not isinstance(page, dict) or not isinstance(page.get("rows"), list) or not page["rows"]:
            self.issues.append({**where, "type": "page", "message": "a page must be an object with a non-empty 'rows' list"})
            return
        self._id(page, where, "page")
        position = page.get("display_position")
        if position not in POSITIONS:
            self.issues.append({**where, "type": "page", "message": "display_position must be 'body', 'intro' or 'outro'"})
            position = None
        content_only = position in ("intro", "outro")
        fields_on_page: set[str] = set()
        for r, row in enumerate(page["rows"]):
            at_row = {**where, "row": r}
            if not isinstance(row, dict) or not isinstance(row.get("columns"), list) or not 1 <= len(row["columns"]) <= 2:
                self.issues.append({**at_row, "type": "row", "message": "a row must be an object with 1 or 2 'columns'"})
                continue
            self._id(row, at_row, "row")
            for c, column in enumerate(row["columns"]):
                at_column = {**at_row, "column": c}
                if not isinstance(column, dict) or not isinstance(column.get("items"), list) or not column["items"]:
                    self.issues.append({**at_column, "type": "column",
                                        "message": "a column must be an object with a non-empty 'items' list"})
                    continue
                self._id(column, at_column, "column")
                for i, item in enumerate(column["items"]):
                    at_item = {**at_column, "item": i}
                    if isinstance(item, dict):
                        self._id(item, at_item, str(item.get("type")))
                    self.issues.extend({**at_item, **issue} for issue in self.item(item, content_only, fields_on_page))

    def item(self, item: Any, content_only: bool, fields_on_page: set[str]) -> list[dict]:
        kind = item.get("type") if isinstance(item, dict) else None
        if kind in INSTRUCTION_TYPES:
            if content_only:
                return [{"type": kind, "message": CONTENT_ONLY}]
            return [{"type": kind, "message": f"{field}: {message}" if field else message}
                    for field, message in instruction_problems(item)]
        if kind == "rich_text":
            if not isinstance(item.get("content"), str) or not item["content"].strip():
                return [{"type": kind, "message": "content is required"}]
            if item.get("content_format", "html") not in ("html", "markdown"):
                return [{"type": kind, "message": "content_format must be 'html' or 'markdown'"}]
            return []
        if kind == "image":
            if not isinstance(item.get("url"), str) or not item["url"].strip():
                return [{"type": kind, "message": "url is required"}]
            return []
        if kind == DATASET_FIELD:
            return self.dataset_field(item, content_only, fields_on_page)
        allowed = ", ".join((*INSTRUCTION_TYPES, *CONTENT_TYPES, DATASET_FIELD))
        return [{"type": str(kind), "message": f"item type must be one of {allowed}"}]

    def dataset_field(self, item: dict, content_only: bool, fields_on_page: set[str]) -> list[dict]:
        field = item.get("field")
        if content_only:
            return [{"type": DATASET_FIELD, "message": CONTENT_ONLY}]
        if not isinstance(field, str) or not field:
            return [{"type": DATASET_FIELD, "message": "field is required"}]
        issue = {"type": DATASET_FIELD, "field": field}
        if field in fields_on_page:
            return [{**issue, "message": ONCE_PER_PAGE}]
        fields_on_page.add(field)
        dataset = self.dataset
        if dataset is None or (dataset.version == 3 and self.v3_dataset_fields):
            return []
        if dataset.version == 3 or dataset.fields is None:
            return [{**issue, "message": NEEDS_V4}]
        if field not in dataset.fields:
            return [{**issue, "message": NO_SUCH_FIELD}]
        if dataset.fields[field] not in DISPLAYABLE_TYPES:
            return [{**issue, "message": f"Field has type {dataset.fields[field]}; only fields of type "
                                         f"{', '.join(DISPLAYABLE_TYPES)} can be referenced"}]
        return []


def ids_of(pages: list | None) -> set[str]:
    """Every page, row, column and item id of a stored layout."""
    found: set[str] = set()

    def walk(node: dict, child: str | None) -> None:
        found.add(node["id"])
        for sub in node.get(child, []) if child else []:
            walk(sub, LEVELS[child])
    for page in pages or []:
        walk(page, "rows")
    return found


def strip_ids(pages: list) -> list:
    """A copy of a layout without the ``id`` of any page, row, column or item."""
    def strip(node: dict, child: str | None) -> dict:
        copy = {k: v for k, v in node.items() if k != "id"}
        if child is not None:
            copy[child] = [strip(sub, LEVELS[child]) for sub in node[child]]
        return copy
    return [strip(page, "rows") for page in pages]


def assign_ids(pages: list, new_id: Callable[[], str]) -> list:
    """A copy of a valid layout where every page, row, column and item has an ``id``: the one given (kept
    from the current layout), else ``new_id()`` (now §3.1). What a PATCH omits is gone with the old layout."""
    def assign(node: dict, child: str | None) -> dict:
        copy = {**node, "id": node.get("id") or new_id()}
        if child is not None:
            copy[child] = [assign(sub, LEVELS[child]) for sub in node[child]]
        return copy
    return [assign(page, "rows") for page in pages]


def instructions_of_items(pages: list) -> list[dict]:
    """The instructions of a stored layout, in page/row/column/item order (intro/outro pages hold none),
    each with its item ``id`` and ``order`` (1-based)."""
    found = []
    for page in pages:
        if page.get("display_position") in ("intro", "outro"):
            continue
        for row in page["rows"]:
            for column in row["columns"]:
                for item in column["items"]:
                    if item.get("type") in INSTRUCTION_TYPES:
                        found.append({**item, "order": len(found) + 1})
    return found
