"""Batch results (API doc §5): the wide report CSV and the JSON responses.

``GET /batches/{id}/report/`` writes the CSV into the object store and answers
``{"url", "expires_at", "http_method": "GET"}`` pointing at a presigned GET (setting
``report_delivery: "pointer"``), or answers the CSV itself with ``Content-Type: text/csv``
(``"inline"``). Layout (team brief "Report CSV"): one row per datapoint × instruction,
``DataPoint_ID, Task_Group_ID, Task_Type, Question, <dataset columns>, Annotator{k}_ID,
Annotator{k}_Response, Annotator{k}_Timestamp`` for k = 1..max annotators on any row.
"""

from __future__ import annotations

import json
import time
import uuid

import pandas as pd

from sandbox import batches, datasets, studies
from sandbox.ids import iso
from sandbox.state import State
from sandbox.web import ApiError, Request, Response, json_response, paginate



def datapoint_id(dataset_id: str, index: int) -> str:
    """The id of datapoint ``index`` (0-based row) of a dataset: UUIDv5 of the dataset id."""
    return str(uuid.uuid5(uuid.UUID(dataset_id), f"datapoint:{index}"))


def cell(instruction: dict, answer: list[dict]) -> str:
    """A response as a report cell (team brief encodings): free text as typed; choice labels joined by
    ``|`` in option order; JSON for choice-with-explanation, value-with-unit and file uploads."""
    kind = instruction["type"]
    if kind == "free_text":
        return answer[0]["value"]
    if kind == "free_text_with_unit":
        label = next(u["label"] for u in instruction["unit_options"] if u["value"] == answer[0]["unit"])
        return json.dumps({"value": answer[0]["value"], "unit": label}, ensure_ascii=False)
    if kind == "file_upload":
        return json.dumps([{k: item[k] for k in ("file_name", "file_key", "file_size_mb", "content_type")}
                           for item in answer], ensure_ascii=False)
    labels = {o["value"]: o["label"] for o in instruction["options"]}
    if kind == "multiple_choice":
        return "|".join(labels[item["value"]] for item in answer)
    return json.dumps([{"label": labels[item["value"]], "explanation": item["explanation"]} for item in answer],
                      ensure_ascii=False)


def _completed_submissions(sb: State, batch_id: str) -> list[dict]:
    found = []
    for study in sb.store.list("study", data_collection_id=batch_id):
        found += [s for s in sb.store.list("submission", study_id=study["id"])
                  if s["status"] in studies.DONE_SUBMISSION_STATUSES]
    return sorted(found, key=lambda s: s["arrival"])


def build_report(sb: State, batch: dict) -> str:
    """The report CSV text of a READY batch (completed submissions only; annotators numbered in the
    order the participants started)."""
    dataset = sb.store.get("dataset", batch["dataset_id"])
    frame = datasets.frame_of(sb, dataset)
    instructions = batches.task_instructions(batch)
    group_of = {dp: g["id"] for g in batch["task_groups"] for dp in g["datapoints"]}
    annotations: dict[tuple[int, str], list[tuple[str, str, str]]] = {}
    by_id = {i["id"]: i for i in instructions}
    for submission in _completed_submissions(sb, batch["id"]):
        for record in submission["responses"]:
            instruction = by_id.get(record["instruction_id"])
            if instruction is not None:
                annotations.setdefault((record["datapoint"], instruction["id"]), []).append(
                    (submission["participant_id"], cell(instruction, record["answer"]), submission["completed_at"]))
    width = max((len(v) for v in annotations.values()), default=0)
    annotator_columns = [f"Annotator{k}_{part}" for k in range(1, width + 1) for part in ("ID", "Response", "Timestamp")]
    rows = []
    for index in range(len(frame)):
        original = list(frame.iloc[index])
        for instruction in instructions:
            triples = [value for triple in annotations.get((index, instruction["id"]), []) for value in triple]
            rows.append([datapoint_id(dataset["id"], index), group_of.get(index, ""), instruction["type"],
                         instruction["description"], *original, *triples, *[""] * (3 * width - len(triples))])
    columns = ["DataPoint_ID", "Task_Group_ID", "Task_Type", "Question", *frame.columns, *annotator_columns]
    return pd.DataFrame(rows, columns=columns).to_csv(index=False, lineterminator="\n")


def ready_batch(sb: State, req: Request) -> dict:
    """The READY batch of the path; 400 otherwise."""
    batch = batches.get_batch(sb, req.params["batch_id"])
    if batch["status"] != "READY":
        raise ApiError(400, f"batch {batch['id']} is {batch['status']}; a report exists once it is READY")
    return batch


def report(sb: State, req: Request) -> Response:
    """``GET …/batches/{id}/report/`` (§2.7) → ``{url, expires_at, http_method}`` or the CSV (``report_delivery``)."""
    batch = ready_batch(sb, req)
    text = build_report(sb, batch)
    if sb.settings.report_delivery == "inline":
        return Response(200, text.encode(), {"Content-Type": "text/csv; charset=utf-8"})
    key = f"reports/{batch['id']}/report-{int(time.time() * 1000)}.csv"
    sb.objects.put_object(key, text.encode(), "text/csv")
    expires_seconds = sb.settings.report_url_expires_seconds
    return json_response(200, {"url": sb.objects.presign_get(key, expires_seconds),
                               "expires_at": iso(time.time() + expires_seconds), "http_method": "GET"})


def responses(sb: State, req: Request) -> Response:
    """``GET …/batches/{id}/responses`` (§2.8) → ``{results, meta}``."""
    batch = ready_batch(sb, req)
    dataset_id = batch["dataset_id"]
    items = [{"id": str(uuid.uuid5(uuid.UUID(dataset_id), f"response:{s['id']}:{n}")), "batch_id": batch["id"],
              "participant_id": s["participant_id"], "task_id": datapoint_id(dataset_id, r["datapoint"]),
              "submission_id": s["id"], "metadata": {},
              "response": {"instruction_id": r["instruction_id"], "type": r["type"], "answer": r["answer"]},
              "created_at": s["completed_at"], "schema_version": 3}
             for s in _completed_submissions(sb, batch["id"]) for n, r in enumerate(s["responses"])]
    page = paginate(req, items, default_limit=len(items) or 1)
    return json_response(200, {"results": page["results"], "meta": {"count": len(items)}})

