"""Test studies (now §5.9 of ../shared/docs/prolific-api-current.md): ``POST /studies/{id}/test-study``
makes a test study of a draft, whose ``study_url`` the sandbox serves as a plain HTML page of the task:
the study's text, the batch's task details, and its first task (the layout or legacy instructions with
the first datapoint's values). The page needs no token (a browser opens it); it is not Prolific's.
"""

from __future__ import annotations

import html

from sandbox import batches, datasets
from sandbox.ids import iso, object_id
from sandbox.state import State
from sandbox.web import ApiError, Request, Response, json_response, not_found

PREVIEW_PATH = "/preview/studies/"


def test_study(sb: State, req: Request) -> Response:
    """``POST /studies/{id}/test-study`` ``{}`` (now §5.9) → 200 ``{study_id, study_url}`` of a new test
    study of the draft; 400 unless the study is UNPUBLISHED, 404 when unknown."""
    study = sb.store.get("study", req.params["study_id"])
    if study is None:
        raise not_found("study", req.params["study_id"])
    if study["status"] != "UNPUBLISHED":
        raise ApiError(400, f"a test study is made from a draft; study {study['id']} is {study['status']}")
    test = sb.store.put("test_study", {"id": object_id(), "source_study_id": study["id"], "created_at": iso()})
    base = f"http://{req.headers.get('host', '127.0.0.1')}"
    return json_response(200, {"study_id": test["id"], "study_url": base + PREVIEW_PATH + test["id"]})


def page(sb: State, req: Request) -> Response:
    """``GET /preview/studies/{test_study_id}`` → 200 ``text/html``, the task as a participant would meet
    it; 404 for an unknown test study."""
    test = sb.store.get("test_study", req.params["test_study_id"])
    study = sb.store.get("study", test["source_study_id"]) if test else None
    if study is None:
        raise not_found("test study", req.params["test_study_id"])
    batch = sb.store.get("batch", study["data_collection_id"])
    details = batch.get("task_details") or {}
    values = _first_datapoint(sb, batch)
    parts = [f"<h1>{html.escape(study['name'])}</h1>", f"<div class='description'>{study['description']}</div>",
             f"<h2>{html.escape(details.get('task_name') or batch['name'])}</h2>",
             f"<div class='introduction'>{details.get('task_introduction') or ''}</div>",
             f"<div class='steps'>{details.get('task_steps') or ''}</div>"]
    if batch.get("batch_items") is not None:
        for layout_page in batch["batch_items"]:
            parts.append("<section class='page'>")
            for row in layout_page["rows"]:
                parts.append("<div class='row'>" + "".join(
                    "<div class='column'>" + "".join(_item(item, values) for item in column["items"]) + "</div>"
                    for column in row["columns"]) + "</div>")
            parts.append("</section>")
    else:
        parts.append("<section class='page'><dl>" + "".join(
            f"<dt>{html.escape(name)}</dt><dd>{html.escape(value)}</dd>" for name, value in values.items()
            if not name.startswith(datasets.METADATA_PREFIX)) + "</dl>")
        parts += [_item(item, values) for item in batches.task_instructions(batch)]
        parts.append("</section>")
    body = ("<!doctype html><html><head><meta charset='utf-8'><title>" + html.escape(study["name"]) +
            " (test study)</title></head><body>" + "\n".join(parts) + "</body></html>")
    return Response(200, body.encode(), {"Content-Type": "text/html; charset=utf-8"})


def _first_datapoint(sb: State, batch: dict) -> dict[str, str]:
    dataset = sb.store.get("dataset", batch["dataset_id"]) if batch.get("dataset_id") else None
    if dataset is None or datasets.not_usable(sb, dataset):
        return {}
    frame = datasets.frame_of(sb, dataset)
    return {} if frame.empty else {str(k): str(v) for k, v in frame.iloc[0].items()}


def _item(item: dict, values: dict[str, str]) -> str:
    kind = item.get("type")
    if kind == "dataset_field":
        return f"<p class='datapoint'>{html.escape(values.get(item['field'], ''))}</p>"
    if kind == "rich_text":
        return f"<div class='content'>{item['content']}</div>"
    if kind == "image":
        return f"<img src='{html.escape(item['url'])}' alt='{html.escape(item.get('alt_text') or '')}'>"
    options = "".join(f"<li>{html.escape(o['label'])}</li>" for o in item.get("options") or [])
    return (f"<fieldset class='{html.escape(kind or '')}'><legend>{html.escape(item.get('description', ''))}</legend>"
            + (f"<ul>{options}</ul>" if options else "<textarea></textarea>") + "</fieldset>")
