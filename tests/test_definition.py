"""The definition language: the shipped definition is valid; every kind of
error is found and names its line."""

from datetime import date

import pytest

from serviceplus.flows.letters import TITLES
from serviceplus.flows.steps import ACTIONS
from serviceplus.models.conditions import Condition, Context, evaluate
from serviceplus.models.definition import (
    AUTO_ACTIONS,
    LETTER_TEMPLATES,
    DefinitionError,
    parse_definition,
)
from serviceplus.models.services.versions import SHIPPED_DIR

SHIPPED = (SHIPPED_DIR / "s81a.yaml").read_text(encoding="utf-8")
ORGS = {"abh-md", "ihk-fosa", "ba"}


def test_shipped_definition_is_valid():
    definition = parse_definition(SHIPPED, ORGS)
    assert definition.fee_eur == 411
    assert definition.step("decision").deadline.duration.days == 14
    assert definition.step("ba_approval").on_timeout.outcome == "deemed"
    assert definition.thresholds["blue_card_salary"][2026] == 50700


def test_action_and_letter_lists_match_the_code():
    assert set(ACTIONS) == AUTO_ACTIONS
    assert set(TITLES) == LETTER_TEMPLATES


@pytest.mark.parametrize(
    ("old", "new", "message", "at"),
    [
        (
            "letter: preapproval",
            "letter: nonsense",
            "steps.preapproval.letter: unknown letter template",
            "letter: nonsense",
        ),
        (
            "next: await_documents",
            "next: nowhere",
            "steps.request_documents.next: route to unknown step 'nowhere'",
            "next: nowhere",
        ),
        ("action: check_completeness", "action: eval", "unknown action 'eval'", "action: eval"),
        (
            "deadline: P2W",
            "deadline: two weeks",
            "steps.decision.deadline.duration",
            "deadline: two weeks",
        ),
        (
            "    role: clerk\n    four_eyes",
            "    role: judge\n    four_eyes",
            "steps.decision.role",
            "role: judge",
        ),
        (
            "organisation: ba",
            "organisation: nobody",
            "unknown organisation 'nobody'",
            "organisation: nobody",
        ),
        (
            "gte: {threshold: blue_card_salary}}\n    skip",
            "gte: {threshold: nope}}\n    skip",
            "steps.ba_approval.when: unknown threshold 'nope'",
            "    when:\n      not:",
        ),
        (
            "deemed: deemed_approval}",
            "deemed: decision}",
            "steps.deemed_approval: step is unreachable",
            "  deemed_approval:",
        ),
    ],
)
def test_errors_name_the_line(old, new, message, at):
    assert old in SHIPPED
    changed = SHIPPED.replace(old, new, 1)
    with pytest.raises(DefinitionError, match=message) as error:
        parse_definition(changed, ORGS)
    line = (
        changed[: changed.index(at)].count("\n")
        + 1
        + at[: len(at) - len(at.lstrip("\n"))].count("\n")
    )
    assert f"line {line}:" in str(error.value)


def test_loop_without_human_step_or_exit_is_refused():
    text = SHIPPED.replace("next: completeness\n", "next: fee_notice\n", 1)  # fee_notice -> itself
    with pytest.raises(DefinitionError, match="neither a human step nor an exit"):
        parse_definition(text, ORGS)


def test_routes_must_match_options():
    text = SHIPPED.replace(
        "routes: {approve: preapproval, reject: refusal}", "routes: {approve: preapproval}"
    )
    with pytest.raises(DefinitionError, match="steps.decision.routes: routes must cover"):
        parse_definition(text, ORGS)


def test_not_yaml():
    with pytest.raises(DefinitionError, match="not valid YAML"):
        parse_definition("steps: [unclosed")


def ctx(**facts) -> Context:
    return Context(facts, {"recognition": "partial"}, {"t": {2025: 10, 2026: 20}}, date(2026, 6, 1))


@pytest.mark.parametrize(
    ("condition", "facts", "expected"),
    [
        ({"fact": "facts.salary", "gte": {"threshold": "t"}}, {"facts": {"salary": 20}}, True),
        ({"fact": "facts.salary", "gte": {"threshold": "t"}}, {"facts": {"salary": 19.99}}, False),
        ({"fact": "facts.salary", "gte": 1}, {"facts": {}}, False),  # missing never satisfies
        ({"fact": "purpose", "in": ["18a", "18b"]}, {"purpose": "18b"}, True),
        ({"outcome": "recognition", "equals": "partial"}, {}, True),
        ({"not": {"outcome": "recognition", "equals": "full"}}, {}, True),
        (
            {"all": [{"fact": "a", "equals": 1}, {"fact": "b", "equals": 2}]},
            {"a": 1, "b": 3},
            False,
        ),
        ({"any": [{"fact": "a", "equals": 1}, {"fact": "b", "equals": 2}]}, {"a": 1, "b": 3}, True),
        (
            {"fact": "until", "after": "entry"},
            {"until": "2027-01-02", "entry": date(2027, 1, 1)},
            True,
        ),
        ({"fact": "until", "after": "entry"}, {"until": None, "entry": date(2027, 1, 1)}, False),
        ({"fact": "x", "present": True}, {"x": ""}, False),
    ],
)
def test_conditions(condition, facts, expected):
    assert evaluate(Condition.model_validate(condition), ctx(**facts)) is expected


def test_condition_needs_exactly_one_test():
    with pytest.raises(ValueError, match="exactly one test"):
        Condition.model_validate({"fact": "a", "equals": 1, "gte": 2})
