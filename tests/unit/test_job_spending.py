"""The whole job's spending for add-places (taskbuilder/job_spending.py, tasks/job_spending.py's bonus rule)."""

from __future__ import annotations

from taskbuilder.job_spending import JobSpending, places_budget_problem
from tasks.job_spending import planned_bonus_cents


def test_every_part_counts_and_the_refusal_names_them():
    spending = JobSpending(places_cents=1000, bonuses_paid_cents=50, other_studies_cents={"st2": 400},
                           bonuses_planned_cents=200, planned_from="bonus payment bp1, not paid yet")
    assert spending.total_cents == 1650
    assert places_budget_problem(spending, study_id="st1", places=9, max_budget_cents=1650, currency="GBP") is None
    problem = places_budget_problem(spending, study_id="st1", places=9, max_budget_cents=1649, currency="GBP")
    assert problem and "16.50 GBP" in problem and "over max_budget 16.49 GBP" in problem
    assert "study st2 4.00 GBP" in problem and "bonuses planned 2.00 GBP" in problem and "Nothing was changed" in problem


def test_planned_bonuses_are_none_once_paid_the_recorded_amount_or_the_rule_at_every_place():
    rule = {"spec": {"bonus": {"per_submission_cents": 25}}}
    assert planned_bonus_cents(rule, 20)[0] == 500
    assert planned_bonus_cents({**rule, "bonus_payment": {"state": "created", "id": "bp", "amount_cents": 75}}, 20)[0] == 75
    assert planned_bonus_cents({**rule, "bonus_payment": {"state": "paid", "amount_cents": 75}}, 20)[0] == 0
    assert planned_bonus_cents({"spec": {"bonus": None}}, 20)[0] == 0


def test_a_bonus_file_counts_its_sum(tmp_path):
    path = tmp_path / "bonus.csv"
    path.write_text("participant_id,bonus_cents\np1,150\np2,40\n")
    assert planned_bonus_cents({"spec": {"bonus": {"csv": str(path)}}}, 20) == (190, f"the bonus file {path}")


def test_the_rounds_spent_count_places_added_after_publishing():
    """The next round is priced against max_budget minus the rounds so far: a round whose study got places by
    add-places after its cost was checked counts at its study's projected cost, not at the cost recorded."""
    from taskbuilder.models.resources import StudyCost
    from tasks.job_spending import rounds_spent_cents

    def cost(rewards: int, fees: int, tax: int) -> StudyCost:
        return StudyCost.model_validate({"rewards": {"rewards": {"amount": rewards}, "fees": {"amount": fees},
                                                     "tax": {"amount": tax}}})

    class Client:
        asked: list = []

        def get_study_cost(self, study_id: str, *, projected: bool = False) -> StudyCost:
            self.asked.append((study_id, projected))
            return {"st1": cost(8000, 2640, 528), "st2": cost(1000, 330, 66)}[study_id]

    rounds = [{"study_id": "st1", "cost_cents": 7977}, {"study_id": "st2", "cost_cents": 2000}]
    assert rounds_spent_cents(Client(), rounds) == 8000 + 2640 + 528 + 2000  # st1 grew; st2's recorded cost is more
    assert Client.asked == [("st1", True), ("st2", True)]
