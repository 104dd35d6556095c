"""Conditions in definitions: a small declarative form, evaluated without eval.

    {fact: residence_purpose, in: ["18g"]}
    {fact: facts.gross_annual_salary_eur, gte: {threshold: blue_card_salary}}
    {outcome: recognition, equals: partial}
    {all: [...]}, {any: [...]}, {not: {...}}

A fact path reads the case (`residence_purpose`, `facts.<name>`, `passport_valid_until`,
`planned_entry`, `contract_months` ...; `applicant_age` is the applicant's age in
full years on the day of evaluation); `outcome` reads the last outcome of
an earlier step. A threshold names a table in the definition, looked up by
the current year.
"""

from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ThresholdRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    threshold: str


Operand = float | int | str | bool | date | ThresholdRef | None


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    fact: str | None = None
    outcome: str | None = None
    equals: Operand = None
    in_: list[str | int | float | bool] | None = Field(default=None, alias="in")
    gte: Operand = None
    lte: Operand = None
    after: str | None = None  # another fact path holding a date
    present: bool | None = None
    all_: list["Condition"] | None = Field(default=None, alias="all")
    any_: list["Condition"] | None = Field(default=None, alias="any")
    not_: "Condition | None" = Field(default=None, alias="not")

    @model_validator(mode="after")
    def _one_form(self) -> "Condition":
        combinators = [x is not None for x in (self.all_, self.any_, self.not_)]
        subject = [x is not None for x in (self.fact, self.outcome)]
        if sum(combinators) + sum(subject) != 1:
            raise ValueError("a condition needs exactly one of fact, outcome, all, any, not")
        if any(subject):
            tests = [self.equals, self.in_, self.gte, self.lte, self.after, self.present]
            if sum(t is not None for t in tests) != 1:
                raise ValueError(
                    "a condition needs exactly one test: equals, in, gte, lte, after, present"
                )
        return self

    def thresholds(self) -> set[str]:
        operands = (self.gte, self.lte, self.equals)
        names = {op.threshold for op in operands if isinstance(op, ThresholdRef)}
        for child in [*(self.all_ or []), *(self.any_ or []), *([self.not_] if self.not_ else [])]:
            names |= child.thresholds()
        return names


class Context:
    """What a condition can read: case facts, earlier outcomes, thresholds."""

    def __init__(
        self,
        facts: dict[str, Any],
        outcomes: dict[str, str],
        thresholds: dict[str, dict[int, float]],
        today: date,
    ):
        self.facts, self.outcomes, self.thresholds, self.today = facts, outcomes, thresholds, today

    def fact(self, path: str) -> Any:
        if path == "applicant_age":  # derived: full years on `today`
            return _age(_as_date(self.facts.get("applicant_birth_date")), self.today)
        value: Any = self.facts
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return value

    def operand(self, op: Operand) -> Any:
        if isinstance(op, ThresholdRef):
            table = self.thresholds[op.threshold]
            year = max((y for y in table if y <= self.today.year), default=min(table))
            return table[year]
        return op


def evaluate(cond: Condition, ctx: Context) -> bool:
    if cond.all_ is not None:
        return all(evaluate(c, ctx) for c in cond.all_)
    if cond.any_ is not None:
        return any(evaluate(c, ctx) for c in cond.any_)
    if cond.not_ is not None:
        return not evaluate(cond.not_, ctx)
    value = ctx.fact(cond.fact) if cond.fact else ctx.outcomes.get(cond.outcome)
    if cond.present is not None:
        return (value not in (None, "")) == cond.present
    if cond.in_ is not None:
        return value in cond.in_
    if cond.equals is not None:
        return value == ctx.operand(cond.equals)
    if cond.after is not None:
        other = ctx.fact(cond.after)
        return (
            _as_date(value) is not None
            and _as_date(other) is not None
            and (_as_date(value) > _as_date(other))
        )
    bound = ctx.operand(cond.gte if cond.gte is not None else cond.lte)
    number = _as_number(value)
    if number is None:
        return False  # a missing figure never satisfies a bound
    return number >= bound if cond.gte is not None else number <= bound


def _as_number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _as_date(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        return None


def _age(born: date | None, today: date) -> int | None:
    if born is None:
        return None
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))
