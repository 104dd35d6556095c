"""The definition language: the shipped definition is valid; errors name the place."""

import pytest

from flows.steps import ACTIONS
from models.definition import AUTO_ACTIONS, DefinitionError, parse_definition
from models.workflows import SHIPPED_DIR

SHIPPED = (SHIPPED_DIR / "s81a.yaml").read_text(encoding="utf-8")


def test_shipped_definition_is_valid():
    definition = parse_definition(SHIPPED)
    assert definition.fee_eur == 411
    assert definition.step("decision").deadline.days == 14


def test_action_list_matches_step_library():
    assert set(ACTIONS) == AUTO_ACTIONS


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("letter: preapproval", "letter: nonsense", "steps.preapproval: unknown letter template"),
        ("next: await_documents", "next: nowhere", "route to unknown step 'nowhere'"),
        ("action: check_completeness", "action: eval", "unknown action 'eval'"),
        ("deadline: P2W", "deadline: two weeks", "steps.decision.deadline"),
    ],
)
def test_errors_name_the_step(old, new, message):
    assert old in SHIPPED
    with pytest.raises(DefinitionError, match=message):
        parse_definition(SHIPPED.replace(old, new, 1))


def test_not_yaml():
    with pytest.raises(DefinitionError, match="not valid YAML"):
        parse_definition("steps: [unclosed")
