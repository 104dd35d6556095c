"""The definition language: the shipped definition is valid; every kind of
error is found and names its line."""

from datetime import date

import pytest

from serviceplus.flows.letters import TEMPLATES, TITLES
from serviceplus.models.conditions import Condition, Context, evaluate
from serviceplus.models.definition import DefinitionError, parse_definition
from serviceplus.models.services.versions import SHIPPED_DIR

SHIPPED = (SHIPPED_DIR / "s81a.yaml").read_text(encoding="utf-8")
ORGS = {"abh-md", "ihk-fosa", "ba"}


def test_shipped_definition_is_valid():
    definition = parse_definition(SHIPPED, ORGS)
    assert definition.fee_eur == 411
    assert definition.step("decision").deadline.duration.days == 14
    assert definition.step("ba_approval").on_timeout.outcome == "deemed"
    assert definition.thresholds["blue_card_salary"][2026] == 50700


SHIPPED_V2 = (SHIPPED_DIR / "s81a_v2.yaml").read_text(encoding="utf-8")
ORGS_V2 = ORGS | {"hwk", "lvwa", "zab"}


def test_shipped_version_2_is_valid():
    definition = parse_definition(SHIPPED_V2, ORGS_V2)
    assert definition.version == 2 and definition.fee_eur == 411
    recognition = definition.step("recognition")
    assert [r.to for r in recognition.organisation_routes] == ["lvwa", "hwk", "zab", "ihk-fosa"]
    assert recognition.deadline.extension.days == 30
    assert definition.thresholds["age_45_salary"][2026] == 55770
    assert definition.purpose_title("16d").startswith("§ 16d Abs. 1 AufenthG (")
    # Every step that waits for the employer can end in a withdrawal.
    for key in ("await_documents", "partial_choice", "ba_answer", "await_hearing"):
        option = definition.step(key).option("withdrawn")
        assert option is not None and option.reason_required, key


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "        to: hwk",
            "        to: nobody",
            "organisation_routes.1: unknown organisation 'nobody'",
        ),
        (
            "      - to: ihk-fosa",
            "      - {when: {fact: residence_purpose, equals: x}, to: ihk-fosa}",
            "the last organisation route needs no condition",
        ),
        ('purpose: "16d"\n', 'purpose: "99x"\n', "unknown residence purpose '99x'"),
        (
            "      - when: {fact: facts.occupation_group, equals: health}",
            "      - when: {fact: facts.x, gte: {threshold: nope}}",
            "unknown threshold 'nope'",
        ),
    ],
)
def test_version_2_features_are_validated(old, new, message):
    assert old in SHIPPED_V2
    with pytest.raises(DefinitionError, match=message):
        parse_definition(SHIPPED_V2.replace(old, new, 1), ORGS_V2)


def test_applicant_age_is_derived_on_the_day():
    facts = {"applicant_birth_date": date(1981, 6, 1)}
    at = {"fact": "applicant_age", "gte": 45}
    older = Context(facts, {}, {}, date(2026, 6, 1))
    younger = Context(facts, {}, {}, date(2026, 5, 31))
    assert evaluate(Condition.model_validate(at), older)
    assert not evaluate(Condition.model_validate(at), younger)
    assert not evaluate(Condition.model_validate(at), Context({}, {}, {}, date(2026, 1, 1)))


def test_every_registered_letter_has_its_template():
    for kind in TITLES:
        assert (TEMPLATES / f"{kind}.html").is_file(), kind


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
