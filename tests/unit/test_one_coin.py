"""The adaptive overlap's stopping rule with ~10 answers per participant (issue 19): the one-coin Dawid-Skene
posterior with a Beta prior (taskbuilder/one_coin.py) and which rule judges (taskbuilder/rounds.py)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from taskbuilder.aggregate import aggregate
from taskbuilder.one_coin import one_coin, one_coin_labels
from taskbuilder.report import ParsedReport
from taskbuilder.rounds import MAJORITY_SHARE, ONE_COIN, below_target, confidence_rule, label_confidence

Q = "Is this sentence positive or negative?"
INSTRUCTION = {"type": "multiple_choice", "description": Q, "answer_limit": 1,
               "options": [{"label": "Positive", "value": "positive"}, {"label": "Negative", "value": "negative"}]}


class Job:
    """Task groups of 10 datapoints, each answered by the participants given; truth alternates."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.datapoints = 0
        self.participants = 0

    def participant(self) -> str:
        self.participants += 1
        return f"p{self.participants:03d}"

    def group(self, participants: list[str], right: list[tuple[bool, ...]]) -> list[str]:
        """One task group: ``right[k][j]`` says whether participant j answered datapoint k truly."""
        ids = []
        for answers in right:
            datapoint = f"d{self.datapoints:04d}"
            truth = ("positive", "negative")[self.datapoints % 2]
            other = "negative" if truth == "positive" else "positive"
            for participant, correct in zip(participants, answers):
                self.rows.append({"datapoint_id": datapoint, "task_group_id": "g", "instruction": Q,
                                  "instruction_type": "multiple_choice", "participant_id": participant,
                                  "answer": truth if correct else other, "answered_at": ""})
            ids.append(datapoint)
            self.datapoints += 1
        return ids

    def pool(self, groups: int, agreeing: int) -> None:
        """``groups`` pairs of new participants that agree on ``agreeing`` of 10 datapoints."""
        for _ in range(groups):
            self.group([self.participant(), self.participant()],
                       [(True, True)] * agreeing + [(True, False), (False, True)] * ((10 - agreeing) // 2))

    def aggregated(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        responses = pd.DataFrame(self.rows)
        datapoints = pd.DataFrame({"datapoint_id": sorted(responses["datapoint_id"].unique())})
        result = aggregate(ParsedReport(responses, datapoints, {}), [INSTRUCTION])
        return responses, result.labels


def _confidence(responses: pd.DataFrame, labels: pd.DataFrame) -> pd.Series:
    rule = confidence_rule(responses, Q)
    return label_confidence(labels, Q, rule, responses).set_index("datapoint_id")["confidence"]


def test_a_pair_with_a_careless_participant_goes_on_and_a_reliable_pair_stops():
    job = Job()
    job.pool(30, agreeing=6)  # a pool of accuracy ~0.75: two of them agree on 6 of 10
    reliable = job.group([job.participant(), job.participant()], [(True, True)] * 10)
    careless = job.participant()  # agrees with each of two partners on 4 of 10 only: likely careless
    pairs = [job.group([careless, job.participant()], [(True, True)] * 4 + [(False, True)] * 6) for _ in range(2)]
    responses, labels = job.aggregated()
    assert confidence_rule(responses, Q) == ONE_COIN  # ~10 answers per participant
    confidence = _confidence(responses, labels)
    agreeing_with_careless = [d for ids in pairs for d in ids[:4]]
    assert (confidence[reliable] >= 0.85).all(), confidence[reliable]
    assert (confidence[agreeing_with_careless] < 0.85).all(), confidence[agreeing_with_careless]
    again, _ = below_target(label_confidence(labels, Q, ONE_COIN, responses), 0.85, max_answers=5)
    assert set(agreeing_with_careless) <= set(again) and not set(reliable) & set(again)
    # the majority share cannot tell them apart: every agreeing pair is unanimous
    share = label_confidence(labels, Q, MAJORITY_SHARE).set_index("datapoint_id")["confidence"]
    assert (share[agreeing_with_careless] == 1.0).all()


def test_a_tie_always_goes_on_even_when_the_posterior_leans():
    job = Job()
    job.pool(20, agreeing=8)
    good, bad = job.participant(), job.participant()
    job.group([good, job.participant()], [(True, True)] * 10)  # good agrees with everyone
    job.group([bad, job.participant()], [(False, True)] * 10)  # bad with nobody
    tie = job.group([good, bad], [(True, False)] * 10)  # bad disagrees with good everywhere: 1-1 ties
    responses, labels = job.aggregated()
    posterior = one_coin_labels(responses, labels, Q).set_index("datapoint_id")
    assert (posterior.loc[tie, "oc_confidence"] > 0.85).all()  # the model leans to good's answer
    assert (_confidence(responses, labels)[tie] == 0.0).all()
    again, _ = below_target(label_confidence(labels, Q, ONE_COIN, responses), 0.85, max_answers=5)
    assert set(tie) <= set(again)


def test_few_answers_per_participant_fall_back_to_the_majority_share():
    job = Job()
    for _ in range(10):  # every participant answers 2 datapoints
        job.group([job.participant(), job.participant()], [(True, True), (True, False)])
    responses, labels = job.aggregated()
    assert confidence_rule(responses, Q) == MAJORITY_SHARE
    confidence = _confidence(responses, labels)
    assert confidence.tolist() == [1.0, 0.0] * 10


def test_one_coin_needs_the_responses():
    job = Job()
    job.pool(1, agreeing=10)
    _, labels = job.aggregated()
    with pytest.raises(ValueError, match="responses"):
        label_confidence(labels, Q, ONE_COIN)


def test_the_prior_shrinks_a_participant_with_few_answers_toward_the_pool():
    rng = np.random.default_rng(7)
    truth = rng.integers(0, 2, 400)
    accuracy = rng.uniform(0.6, 0.95, 80)
    tasks, workers = np.repeat(np.arange(400), 2), rng.integers(0, 80, 800)
    workers[:80] = np.arange(80)  # every participant answers at least once
    labels = np.where(rng.random(800) < accuracy[workers], truth[tasks], 1 - truth[tasks])
    _, plain = one_coin(tasks, workers, labels, 2, prior_strength=0.0)
    _, shrunk = one_coin(tasks, workers, labels, 2, prior_strength=20.0)
    pool = plain.mean()
    assert np.abs(shrunk - pool).mean() < 0.5 * np.abs(plain - pool).mean()
    assert np.corrcoef(shrunk, plain)[0, 1] > 0.5  # agreeing more still weighs more


@pytest.mark.filterwarnings("ignore:The (inplace|copy) keyword")  # crowd-kit 1.4.2 under pandas 3
def test_without_a_prior_it_matches_crowd_kits_one_coin():
    aggregation = pytest.importorskip(
        "crowdkit.aggregation", reason="crowd-kit is not installed (pip install -e '.[dev]' adds it)")
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 3, 300)
    accuracy = rng.uniform(0.5, 0.95, 30)
    tasks, workers = np.repeat(np.arange(300), 3), np.concatenate([rng.choice(30, 3, replace=False) for _ in range(300)])
    wrong = (truth[tasks] + rng.integers(1, 3, 900)) % 3
    labels = np.where(rng.random(900) < accuracy[workers], truth[tasks], wrong)
    posterior, _ = one_coin(tasks, workers, labels, 3, prior_strength=0.0)
    frame = pd.DataFrame({"task": tasks, "worker": workers, "label": labels})
    theirs = aggregation.OneCoinDawidSkene(n_iter=200).fit(frame).labels_.sort_index()
    agreement = (posterior.argmax(axis=1) == theirs.to_numpy()).mean()
    assert agreement >= 0.98, agreement
    assert (posterior.argmax(axis=1) == truth).mean() > 0.8


def test_answers_that_are_no_option_are_left_out():
    job = Job()
    job.pool(3, agreeing=10)
    responses, labels = job.aggregated()
    noisy = pd.concat([responses, responses.head(1).assign(answer="positive|negative", participant_id="x")])
    assert one_coin_labels(noisy, labels, Q).equals(one_coin_labels(responses, labels, Q))
    assert json.loads(labels["votes"].iloc[0]) == {"positive": 2}


def test_answers_at_random_never_look_confident():
    """Participants answering at chance carry no evidence: the posterior must stay near the option shares. A class
    prior fitted freely collapsed onto one option (every posterior ~1, so the adaptive rule asked nobody again)."""
    rng = np.random.default_rng(11)
    for n_labels in (2, 3):
        means = []
        for _ in range(5):
            tasks = np.repeat(np.arange(60), 3)
            workers = np.concatenate([rng.choice(15, 3, replace=False) for _ in range(60)])
            posterior, accuracy = one_coin(tasks, workers, rng.integers(0, n_labels, 180), n_labels)
            means.append(posterior.max(axis=1).mean())
        assert np.mean(means) < 0.8 / n_labels + 0.4, (n_labels, means)   # 2 options: < 0.8; 3: < 0.67
