"""The workflow definition language: YAML validated by pydantic models.

A definition is data: steps, who acts, forms, deadlines and routes. The flow
walks it; nothing in it is evaluated as code. See docs/definitions.md.
"""

from datetime import timedelta
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from models.tables import Role

# The step library's actions (implemented in flows/steps.py; a test keeps
# both lists equal) and the letter templates in flows/templates/letters/.
AUTO_ACTIONS = {"send_letter", "check_completeness"}
LETTER_TEMPLATES = {"receipt", "missing_documents", "preapproval", "refusal"}


class DefinitionError(ValueError):
    """A definition that cannot be used; the message names what is wrong."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Option(_Strict):
    value: str = Field(pattern=r"^[a-z_]+$")
    label: str
    reason_required: bool = False


class Step(_Strict):
    title: str
    kind: Literal["auto", "human", "end"]
    # auto
    action: str | None = None
    letter: str | None = None
    # human
    role: Role | None = None
    deadline: timedelta | None = None
    options: list[Option] = []
    # routing: `next` for a single successor, `routes` by outcome
    next: str | None = None
    routes: dict[str, str] = {}
    # end
    outcome: str | None = None

    def successor(self, outcome: str | None) -> str:
        if self.next:
            return self.next
        try:
            return self.routes[outcome or ""]
        except KeyError:
            raise DefinitionError(f"no route for outcome {outcome!r}") from None

    def option(self, value: str) -> Option | None:
        return next((o for o in self.options if o.value == value), None)


class Definition(_Strict):
    name: str = Field(pattern=r"^[a-z0-9_-]+$")
    version: int = Field(ge=1)
    title: str
    start: str
    fee_eur: float = 0
    documents: dict[str, str]
    required_documents: dict[str, list[str]]
    steps: dict[str, Step]

    @model_validator(mode="after")
    def _check_references(self) -> "Definition":
        errors = list(self._reference_errors())
        if errors:
            raise ValueError("; ".join(errors))
        return self

    def _reference_errors(self):
        if self.start not in self.steps:
            yield f"start step {self.start!r} does not exist"
        for purpose, kinds in self.required_documents.items():
            for kind in kinds:
                if kind not in self.documents:
                    yield f"required_documents.{purpose}: unknown document {kind!r}"
        for key, step in self.steps.items():
            yield from _step_errors(key, step, self.steps)

    def step(self, key: str) -> Step:
        return self.steps[key]

    def document_label(self, kind: str) -> str:
        return self.documents.get(kind, kind)


def _step_errors(key: str, step: Step, steps: dict[str, Step]):
    where = f"steps.{key}"
    if step.kind == "auto" and step.action not in AUTO_ACTIONS:
        yield f"{where}: unknown action {step.action!r}"
    if step.action == "send_letter" and step.letter not in LETTER_TEMPLATES:
        yield f"{where}: unknown letter template {step.letter!r}"
    if step.kind == "human":
        if step.role is None or not step.options:
            yield f"{where}: a human step needs a role and options"
        elif set(step.routes) != {o.value for o in step.options}:
            yield f"{where}: routes must cover exactly the options"
    if step.kind == "end" and not step.outcome:
        yield f"{where}: an end step needs an outcome"
    if step.kind != "end" and not (step.next or step.routes):
        yield f"{where}: needs next or routes"
    for target in [step.next, *step.routes.values()]:
        if target is not None and target not in steps:
            yield f"{where}: route to unknown step {target!r}"


def parse_definition(text: str) -> Definition:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DefinitionError(f"not valid YAML: {exc}") from exc
    try:
        return Definition.model_validate(data)
    except ValidationError as exc:
        raise DefinitionError(_describe(exc)) from exc


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'definition'}: {err['msg']}"
        for err in exc.errors()
    )
