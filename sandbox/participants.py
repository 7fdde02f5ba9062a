"""Simulated participants: they take the places of ACTIVE studies and answer the batch's tasks.

Each engine tick, per ACTIVE study, participants arrive at ``participant_arrival_per_second``; each
takes a task group that still has room (fewer than ``annotators_per_task`` holders) and that they
have never taken before, and finishes after about ``submission_seconds``: completed (answers
stored), RETURNED or TIMED-OUT (place freed). Every random draw comes from ``random.Random`` seeded
with the settings' seed and the arrival number, so two runs with the same inputs are identical.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import random
import time
from dataclasses import dataclass, field
from botocore.exceptions import BotoCoreError, ClientError

from sandbox import batches, datasets, participant_groups, studies, submissions
from sandbox.ids import iso, object_id
from sandbox.instructions import CHOICE_TYPES
from sandbox.state import State

WORDS = ("clear", "tone", "because", "the", "text", "reads", "as", "fairly", "mixed", "overall", "wording",
         "suggests", "this", "label", "fits", "best", "given", "context")


@dataclass
class Participant:
    """A simulated participant: pool number, 24-hex id, accuracy on gold questions, whether careless."""

    number: int
    id: str
    accuracy: float
    careless: bool


def participant(sb: State, number: int) -> Participant:
    """Participant ``number`` of the pool; traits drawn from the seed (accuracy clipped to [0, 1])."""
    s = sb.settings
    rng = random.Random(f"{s.seed}:participant:{number}")
    accuracy = min(1.0, max(0.0, rng.gauss(s.accuracy_mean, s.accuracy_spread)))
    return Participant(number, hashlib.sha256(f"{s.seed}:participant:{number}".encode()).hexdigest()[:24], accuracy,
                       rng.random() < s.careless_share)


@dataclass
class StudyRun:
    """In-memory bookkeeping of one study's simulation, rebuilt from its submissions when missing."""

    arrivals: int = 0
    next_arrival_at: float = 0.0
    cursor: int = 0
    held: dict[str, int] = field(default_factory=dict)            # task group id → places held
    places_held: int = 0                                          # sum of ``held``
    groups_of: dict[str, set[str]] = field(default_factory=dict)  # participant id → task groups ever taken
    count_of: dict[str, int] = field(default_factory=dict)        # participant id → submissions
    active: dict[str, dict] = field(default_factory=dict)         # submission id → ACTIVE submission
    busy: set[str] = field(default_factory=set)                   # participants with an ACTIVE submission


def _run_of(sb: State, study: dict) -> StudyRun:
    run = sb.runs.get(study["id"])
    if run is None:
        run = StudyRun(next_arrival_at=time.time())
        for s in sb.store.list("submission", study_id=study["id"]):
            run.arrivals = max(run.arrivals, s["arrival"] + 1)
            run.groups_of.setdefault(s["participant_id"], set()).add(s["task_group_id"])
            run.count_of[s["participant_id"]] = run.count_of.get(s["participant_id"], 0) + 1
            if s["status"] == "ACTIVE":
                run.active[s["id"]] = s
                run.busy.add(s["participant_id"])
            if s["status"] in studies.DONE_SUBMISSION_STATUSES + ("ACTIVE",):
                run.held[s["task_group_id"]] = run.held.get(s["task_group_id"], 0) + 1
                run.places_held += 1
        sb.runs[study["id"]] = run
    return run


def tick(sb: State) -> None:
    """One simulation step for every study with places or submissions in play (engine tick)."""
    with sb.lock:
        for study in sb.store.list("study"):
            if study["status"] not in ("ACTIVE", "PAUSED", "AWAITING REVIEW"):
                continue
            run = _run_of(sb, study)
            _finish_due(sb, study, run)
            if study["status"] == "ACTIVE":
                _arrive(sb, study, run)
            studies.settle(sb, study)


def _arrive(sb: State, study: dict, run: StudyRun) -> None:
    now = time.time()
    interval = 1.0 / sb.settings.participant_arrival_per_second
    run.next_arrival_at = max(run.next_arrival_at, now - 1.0)  # no burst after a pause
    batch = sb.store.get("batch", study["data_collection_id"])
    annotators = study["data_collection_metadata"]["annotators_per_task"]
    limit = study["submissions_config"]["max_submissions_per_participant"]
    allowed = _allowed_numbers(sb, study)
    while run.next_arrival_at <= now and run.places_held < study["total_available_places"]:
        run.next_arrival_at += interval
        if allowed == []:
            continue  # an allowlist with no pool participant in it: nobody may come
        rng = random.Random(f"{sb.settings.seed}:arrival:{run.arrivals}")
        for _ in range(10):
            number = rng.randrange(sb.settings.participant_pool_size) if allowed is None else rng.choice(allowed)
            person = participant(sb, number)
            if person.id in run.busy or (limit > 0 and run.count_of.get(person.id, 0) >= limit):
                continue
            if not participant_groups.eligible(sb, study, person.id):
                continue
            group = _free_group(batch["task_groups"], run, person.id, annotators)
            if group is not None:
                _start(sb, study, run, person, group, rng)
                break


_POOL_INDEX: dict[tuple[int, int], dict[str, int]] = {}


def _allowed_numbers(sb: State, study: dict) -> list[int] | None:
    """Pool numbers of the members of the study's ``participant_group_allowlist`` groups (read now), or
    None when the study has no allowlist (anyone in the pool may come)."""
    groups = [g for f in study.get("filters") or [] if f.get("filter_id") == participant_groups.ALLOWLIST
              for g in f.get("selected_values") or []]
    if not groups:
        return None
    key = (sb.settings.seed, sb.settings.participant_pool_size)
    if key not in _POOL_INDEX:
        _POOL_INDEX[key] = {participant(sb, n).id: n for n in range(sb.settings.participant_pool_size)}
    index = _POOL_INDEX[key]
    members = {m for g in groups for m in (sb.store.get("participant_group", g) or {}).get("members", {})}
    return sorted(index[m] for m in members if m in index)


def _free_group(groups: list[dict], run: StudyRun, participant_id: str, annotators: int) -> dict | None:
    """The next task group (round robin from the cursor) with room that the participant never took."""
    taken = run.groups_of.get(participant_id, set())
    for step in range(len(groups)):
        index = (run.cursor + step) % len(groups)
        group = groups[index]
        if run.held.get(group["id"], 0) < annotators and group["id"] not in taken:
            run.cursor = index + 1
            return group
    return None


def _start(sb: State, study: dict, run: StudyRun, person: Participant, group: dict, rng: random.Random) -> None:
    s = sb.settings
    roll = rng.random()
    outcome = "RETURNED" if roll < s.return_rate else "TIMED-OUT" if roll < s.return_rate + s.timeout_rate else "DONE"
    now = time.time()
    submission = {
        "id": object_id(), "study_id": study["id"], "participant_id": person.id, "task_group_id": group["id"],
        "started_at": iso(now), "completed_at": None, "reviewed_at": None, "is_complete": False, "time_taken": None,
        "reward": study["reward"], "status": "ACTIVE", "strata": {}, "study_code": None, "star_awarded": False,
        "bonus_payments": [],
        # private: simulation bookkeeping
        "participant_number": person.number, "datapoints": group["datapoints"], "arrival": run.arrivals,
        "outcome": outcome, "started_epoch": now, "due_epoch": now + s.submission_seconds * rng.uniform(0.5, 1.5),
        "responses": [],
    }
    run.arrivals += 1
    run.held[group["id"]] = run.held.get(group["id"], 0) + 1
    run.places_held += 1
    run.groups_of.setdefault(person.id, set()).add(group["id"])
    run.count_of[person.id] = run.count_of.get(person.id, 0) + 1
    run.active[submission["id"]] = submission
    run.busy.add(person.id)
    submissions.set_status(sb, submission, "ACTIVE")
    sb.emit(study["workspace_id"], "participant.submission.created",
            {"resource_id": submission["id"], "event_type": "participant.submission.created",
             "study_id": study["id"], "participant_id": person.id, "status": "ACTIVE"})


def _finish_due(sb: State, study: dict, run: StudyRun) -> None:
    now = time.time()
    for submission in [s for s in run.active.values() if s["due_epoch"] <= now]:
        if submission["outcome"] == "DONE":
            try:
                submission["responses"] = answer_group(sb, study, submission)
            except OSError:
                continue  # the object store did not take a file upload; try again next tick
            submission.update(completed_at=iso(now), is_complete=True, study_code=studies.completion_code(study),
                              time_taken=round(now - submission["started_epoch"]))
            status = "APPROVED" if studies.auto_approves(study) else "AWAITING REVIEW"
            participant_groups.apply_actions(sb, studies.completed_code(study), submission["participant_id"])
        else:
            status = submission["outcome"]
            run.held[submission["task_group_id"]] -= 1
            run.places_held -= 1
        del run.active[submission["id"]]
        run.busy.discard(submission["participant_id"])
        submissions.set_status(sb, submission, status)


def answer_group(sb: State, study: dict, submission: dict) -> list[dict]:
    """The submission's answers: one record per datapoint of its task group × instruction, each
    ``{"datapoint", "instruction_id", "type", "answer": [...]}`` with ``answer`` in the shape of
    ``GET /batches/{id}/responses`` (API doc §5.2)."""
    batch = sb.store.get("batch", study["data_collection_id"])
    dataset = sb.store.get("dataset", batch["dataset_id"])
    frame = datasets.frame_of(sb, dataset)
    instructions = batches.task_instructions(batch)
    gold_id = next((i["id"] for i in instructions if i["type"] in CHOICE_TYPES), None)
    gold_column = _gold_column(sb.settings.gold_column, datasets.metadata_columns(dataset))
    # Seeded by participant and arrival: a study's n-th submission must not replay the draws of another
    # study's n-th (a follow-up round over the same datapoints then erred where the first round erred).
    rng = random.Random(f"{sb.settings.seed}:answers:{submission['participant_number']}:{submission['arrival']}")
    person = participant(sb, submission["participant_number"])
    records = []
    for datapoint in submission["datapoints"]:
        for instruction in instructions:
            gold = frame.at[datapoint, gold_column] if instruction["id"] == gold_id and gold_column in frame.columns else None
            answer = _answer(sb, rng, person, instruction, gold, submission, datapoint)
            records.append({"datapoint": datapoint, "instruction_id": instruction["id"], "type": instruction["type"],
                            "answer": answer})
    return records


def _gold_column(name: str, metadata: list[str]) -> str:
    """The gold column: the ``gold_column`` setting, or on a V4 dataset the metadata field of the same
    name without its ``META_`` prefix (``META_gold`` → ``gold``)."""
    bare = name.removeprefix(datasets.METADATA_PREFIX)
    return bare if name not in metadata and bare in metadata else name


def _answer(sb: State, rng: random.Random, person: Participant, instruction: dict, gold: str | None,
            submission: dict, datapoint: int) -> list[dict]:
    kind = instruction["type"]
    if kind in CHOICE_TYPES:
        chosen = _choose(rng, person, instruction, gold)
        if kind == "multiple_choice":
            return [{"value": option["value"]} for option in chosen]
        return [{"value": option["value"], "explanation": _text(rng, 3, 40)} for option in chosen]
    if kind == "free_text":
        bounds = instruction.get("validation") or {}
        shortest = max(1, bounds.get("min") or 0)
        longest = bounds["max"] if bounds.get("max") is not None else max(200, shortest)
        return [{"value": _text(rng, min(shortest, longest), longest)}]
    if kind == "free_text_with_unit":
        unit = rng.choice(instruction["unit_options"])
        bounds = unit.get("validation") or {}
        low, high = bounds.get("min", 0), bounds.get("max", 100)
        value = rng.uniform(low, high)
        text = str(round(value, 1)) if low <= round(value, 1) <= high else str(value)
        return [{"value": text, "unit": unit["value"]}]
    return _files(sb, rng, instruction, submission, datapoint)


def _choose(rng: random.Random, person: Participant, instruction: dict, gold: str | None) -> list[dict]:
    """Selected options in option order: the gold option with the participant's accuracy (else a
    random wrong one); careless participants and non-gold questions pick at random within
    ``answer_limit``; an exclusive option is picked alone."""
    options = instruction["options"]
    gold_option = next((o for o in options if o["value"] == gold), None) if gold else None
    if gold_option is not None and not person.careless:
        if rng.random() < person.accuracy or len(options) == 1:
            return [gold_option]
        return [rng.choice([o for o in options if o is not gold_option])]
    limit = instruction["answer_limit"]
    most = len(options) if limit == -1 else min(limit, len(options))
    picked = rng.sample(range(len(options)), rng.randint(1, most))
    exclusive = [i for i in picked if options[i].get("exclusive")]
    if exclusive:
        picked = exclusive[:1]
    return [options[i] for i in sorted(picked)]


def _text(rng: random.Random, shortest: int, longest: int) -> str:
    """Words of free text whose length in characters lies within [shortest, longest]."""
    target = rng.randint(shortest, max(shortest, min(longest, shortest + 60)))
    text = ""
    while len(text) < target:
        text = (text + " " + rng.choice(WORDS)).strip()
    return text[:longest]


def _files(sb: State, rng: random.Random, instruction: dict, submission: dict, datapoint: int) -> list[dict]:
    """Upload small generated files into the object store; answer items as API doc §5.2."""
    lowest = instruction.get("min_file_count", 1)
    highest = instruction.get("max_file_count", lowest)
    extensions = instruction.get("accepted_file_types") or [".txt"]
    items = []
    for n in range(rng.randint(lowest, max(lowest, highest))):
        extension = rng.choice(extensions)
        name = f"upload-{datapoint}-{n + 1}{extension}"
        key = f"uploads/{submission['study_id']}/{submission['id']}/{instruction['id']}/{name}"
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        data = json.dumps({"participant": submission["participant_id"], "datapoint": datapoint, "file": n}).encode()
        try:
            sb.objects.put_object(key, data, content_type)
        except (BotoCoreError, ClientError) as exc:  # turned into OSError: the caller retries next tick
            raise OSError(f"object store refused {key}: {exc}") from exc
        items.append({"file_key": key, "file_name": name, "file_size_mb": round(len(data) / 1_000_000, 6),
                      "content_type": content_type})
    return items
