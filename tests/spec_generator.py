"""Random job specs as YAML text, with what a person reading the text would understand from it.

Used by the generated-input tests: repeated keys, numbers and dates where text is expected, money fields
written in odd forms or in odd places. Each spec comes with `expect`: the values a reader takes from the
text (`None` where the text is ambiguous, so the spec must be refused), and whether it must be refused.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

CSV = "id,review_text\nr1,Great\nr2,Awful\nr3,Fine\nr4,Meh\n"
TEXT_FORMS = ["01", "1.10", "1_000", "0123", "yes", "no", "on", "2026-01-01", "007", "1:30", "0x1F", "1e3", "positive",
              "3.0", "true", "null_value", "12:30:00"]
PUBLISH_FORMS = [("false", False), ("no", False), ("off", False), ("False", False), ("true", True), ("yes", True), ("on", True),
                 ("True", True),
                 # text is not a switch: refused, whatever pydantic would make of it ("1", "y" and "true" read as true)
                 ('"false"', None), ("'no'", None), ('"1"', None), ("y", None), ('"true"', None), ("1", None)]


def _number_forms(value: int) -> list[tuple[str, int | None]]:
    """Ways to write `value`, each with what a reader takes it for (None: YAML reads it otherwise, refuse)."""
    text = str(value)
    spaced = f"{text[:-2]}_{text[-2:]}" if len(text) > 2 else text
    return [(text, value), (f'"{text}"', value), (f"{text}.0", value), (f"0{text}", None), (spaced, None if "_" in spaced else value),
            (f"{value // 60}:{value % 60:02d}", None), (hex(value), None)]


def _pick_number(rng: random.Random, value: int) -> tuple[str, int | None]:
    forms = _number_forms(value)
    return rng.choice(forms[:3]) if rng.random() < 0.6 else rng.choice(forms)


@dataclass
class GeneratedSpec:
    text: str
    publish_says_false: bool  # some publish line in the text reads as false
    max_budget_read: list[int | None] = field(default_factory=list)  # every max_budget a reader sees
    reward_read: list[int | None] = field(default_factory=list)
    option_values: list[str] = field(default_factory=list)
    code: str = ""
    must_refuse: bool = False
    why: list[str] = field(default_factory=list)


def generate(rng: random.Random, *, places: int = 4) -> GeneratedSpec:
    publish_text, publish_value = rng.choice(PUBLISH_FORMS)
    budget = rng.choice([50, 100, 300, 1000, 5000, 100000])
    budget_text, budget_read = _pick_number(rng, budget)
    reward = rng.choice([60, 150, 300, 1200])
    reward_text, reward_read = _pick_number(rng, reward)
    values = rng.sample(TEXT_FORMS, 3)
    code = rng.choice(TEXT_FORMS + ["C0DE1"])
    spec = GeneratedSpec(text="", publish_says_false=publish_value is False, max_budget_read=[budget_read],
                         reward_read=[reward_read], option_values=values, code=code)
    if budget_read is None or reward_read is None:
        spec.must_refuse, spec.why = True, spec.why + ["a number YAML reads otherwise"]
    if publish_value is None:
        spec.must_refuse, spec.why = True, spec.why + ["publish written as text or a number"]
    study_extra, top_extra = [], []
    if rng.random() < 0.25:  # a repeated key, later in the same mapping
        kind = rng.choice(["publish", "max_budget", "reward"])
        if kind == "publish":
            top_extra.append("publish: true")
        elif kind == "max_budget":
            top_extra.append("max_budget: 100000000")
            spec.max_budget_read.append(100000000)
        else:
            study_extra.append("  reward: 99999")
            spec.reward_read.append(99999)
        spec.must_refuse, spec.why = True, spec.why + [f"repeated {kind}"]
    if rng.random() < 0.2:  # a money or run-control field in an odd place
        odd = rng.choice([("study", "  max_budget: 10"), ("study", "  publish: true"), ("top", "reward: 10"),
                          ("study", "  fee_rate: 0"), ("top", "annotators_per_task: 50")])
        (study_extra if odd[0] == "study" else top_extra).append(odd[1])
        if "max_budget" in odd[1]:
            spec.max_budget_read.append(10)
        spec.must_refuse, spec.why = True, spec.why + [f"misplaced {odd[1].strip()}"]
    options = "\n".join(f"        - {{label: Option {i}, value: {v}}}" for i, v in enumerate(values))
    spec.text = "\n".join([
        f"name: gen-{rng.getrandbits(40):010x}",
        f"publish: {publish_text}",
        f"max_budget: {budget_text}",
        "dataset: {name: ds, csv: data.csv, id_column: id}",
        "batch:",
        "  name: generated batch",
        "  tasks_per_group: 2",
        "  instructions:",
        "    - type: multiple_choice",
        "      description: Pick one",
        "      answer_limit: 1",
        "      options:",
        options,
        "study:",
        "  name: Generated study",
        f"  reward: {reward_text}",
        "  estimated_completion_time: 2",
        "  annotators_per_task: 1",
        f"  completion_codes: [{{code: {code}, code_type: COMPLETED, actions: [{{action: AUTOMATICALLY_APPROVE}}]}}]",
        *study_extra,
        "wait_for_completion: false",
        *top_extra,
        "",
    ])
    return spec
