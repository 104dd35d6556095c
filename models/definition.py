"""The workflow definition language: YAML validated by pydantic models.

A definition is data: steps, who acts, forms, deadlines, what happens when a
deadline passes, conditions and routes. The flow walks it; nothing in it is
evaluated as code (conditions: models/conditions.py). See docs/definitions.md.
"""

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

import yaml
from dateutil.relativedelta import relativedelta
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from serviceplus.models.conditions import Condition, Context, evaluate
from serviceplus.models.tables import Role

# libyaml's parser where installed (the wheels have it): ten times faster,
# and each flow run parses its case's definition once.
SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

CONFIRM, SEND_BACK = "confirm", "send_back"


class DefinitionError(ValueError):
    """A definition that cannot be used; the message names each line and problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Option(_Strict):
    value: str = Field(pattern=r"^[a-z_]+$")
    label: str
    reason_required: bool = False


# Where a deadline counts from: when the task opens, when the file was found
# complete, when an earlier step ran ("step:preapproval") or a date a person
# recorded in an earlier step's form ("fact:visa_application_on").
DEADLINE_FROM = r"^(opened|file_complete|step:[a-z0-9_]+|fact:[a-z0-9_]+)$"


class Deadline(_Strict):
    duration: timedelta
    from_: str = Field(default="opened", alias="from", pattern=DEADLINE_FROM)
    # How much longer the acting body may make it, once, with a reason
    # (e.g. a recognition body's extension); None: not extendable.
    extension: timedelta | None = None


class OnTimeout(_Strict):
    action: Literal["decide", "remind", "escalate"]
    outcome: str | None = None  # decide: the outcome recorded
    note: str = ""  # decide: recorded as the reason, e.g. "Zustimmungsfiktion"
    role: Role | None = None  # escalate: the role that gets the task


class Expiry(_Strict):
    """A second clock on a human task besides its deadline: when it runs out
    the task is decided with `outcome` (e.g. the pre-approval lapses); a
    reminder goes `remind_before` that moment. `period` counts calendar
    months like the letters (P3M from 31 May: valid through 31 August)."""

    period: "Period"
    from_: str = Field(default="opened", alias="from", pattern=DEADLINE_FROM)
    remind_before: timedelta | None = None
    outcome: str
    note: str = ""


class FormField(_Strict):
    """A value a person enters with a decision (validated; German messages).
    It is stored as the case's fact `name`; a `document` field's name is a
    document kind the case must hold (uploaded with the decision or before)."""

    name: str = Field(pattern=r"^[a-z0-9_]+$")
    label: str
    type: Literal["date", "amount", "text", "document"]
    # The options this field belongs to (required with them); empty: all.
    for_: list[str] = Field(default=[], alias="for")
    min: float | None = None  # amount: the least accepted
    not_future: bool = False  # date: today or earlier


class Route(_Strict):
    when: Condition | None = None
    to: str


class Step(_Strict):
    title: str
    kind: Literal["auto", "human", "end"]
    when: Condition | None = None  # the step runs only when this holds
    skip_to: str | None = None  # where to go when it does not (default: next)
    # auto
    action: str | None = None
    letter: str | None = None
    reply_within: timedelta | None = None  # send_letter: the reply date the letter names
    purpose: str | None = None  # change_purpose: the case's new residence purpose
    note: str = ""  # record_note: the internal note written to the case
    # human
    organisation: str = "case"  # "case" (the case's authority) or an organisation slug
    # The first route whose condition holds picks the organisation instead;
    # the last one has no condition (the default).
    organisation_routes: list[Route] = []
    recheck_rules: bool = False  # show the completeness rules' findings as of opening
    role: Role | None = None
    deadline: Deadline | None = None
    on_timeout: OnTimeout | None = None
    expires: Expiry | None = None
    fields: list[FormField] = []
    four_eyes: bool = False
    options: list[Option] = []
    documents: list[str] = []  # kinds another organisation acting here may see
    # The employer may answer this step on the public status page: upload
    # documents, or pick one of `employer_options` (a subset of the options),
    # which a clerk then confirms (docs/definitions.md).
    employer_answer: Literal["documents", "options"] | None = None
    employer_options: list[str] = []
    # documents: the option recorded for the employer as soon as their upload
    # arrives (e.g. "received", which routes to the completeness check): the
    # re-check runs without a clerk. Unset: the clerk decides.
    employer_recheck: str | None = None
    # routing
    next: str | None = None
    routes: dict[str, str] | list[Route] = {}
    # end
    outcome: str | None = None

    @field_validator("deadline", mode="before")
    @classmethod
    def _short_deadline(cls, value: Any) -> Any:
        return {"duration": value} if isinstance(value, str) else value

    def option(self, value: str) -> Option | None:
        return next((o for o in self.options if o.value == value), None)

    def outcomes(self) -> set[str]:
        values = {o.value for o in self.options}
        if self.on_timeout and self.on_timeout.outcome:
            values.add(self.on_timeout.outcome)
        if self.expires:
            values.add(self.expires.outcome)
        return values

    def fields_for(self, option: str) -> list["FormField"]:
        return [f for f in self.fields if not f.for_ or option in f.for_]

    def organisation_for(self, ctx: Context) -> str:
        """The organisation that acts here for the case `ctx` describes."""
        for route in self.organisation_routes:
            if route.when is None or evaluate(route.when, ctx):
                return route.to
        return self.organisation

    def route_targets(self) -> list[str]:
        if isinstance(self.routes, dict):
            return list(self.routes.values())
        return [r.to for r in self.routes]

    def targets(self) -> list[str]:
        return [t for t in [self.next, self.skip_to, *self.route_targets()] if t]

    def successor(self, outcome: str | None, ctx: Context) -> str:
        if self.next:
            return self.next
        if isinstance(self.routes, dict):
            if outcome in self.routes:
                return self.routes[outcome]
        else:
            for route in self.routes:
                if route.when is None or evaluate(route.when, ctx):
                    return route.to
        raise DefinitionError(f"no route for outcome {outcome!r}")


class Rule(_Strict):
    """A completeness rule: when `when` holds, `require` must hold too."""

    when: Condition | None = None
    require: Condition
    message: str


# A calendar period for letters: years, months, weeks, days (P3M, P1M, P3W,
# P14D). Unlike the task deadlines it keeps calendar months: 31 Jan + P1M is
# 28/29 Feb and 15 May + P3M is 15 Aug, with no day clamped beyond need.
_PERIOD = r"^P(?=\d)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?$"


def _check_period(value: str) -> str:
    if not re.match(_PERIOD, value):
        raise ValueError(f"not a period like P1M, P3W or P14D: {value!r}")
    return value


Period = Annotated[str, AfterValidator(_check_period)]
Expiry.model_rebuild()
Step.model_rebuild()


def period_delta(period: str) -> relativedelta:
    years, months, weeks, days = (int(n or 0) for n in re.match(_PERIOD, period).groups())
    return relativedelta(years=years, months=months, weeks=weeks, days=days)


class LetterPeriods(_Strict):
    """Periods the letters print; a missing one leaves its sentence out."""

    reply: Period | None = None  # reply date of a request for documents
    payment: Period | None = None  # the fee is paid within
    appeal: Period | None = None  # the legal remedy is lodged within (Rechtsbehelfsfrist)
    preapproval_validity: Period | None = None  # the pre-approval is valid for
    visa_appointment: Period | None = None  # the mission gives an appointment within
    visa_decision: Period | None = None  # the mission decides within (complete application)


class LegalReferences(_Strict):
    """The provisions the letters cite; a missing one is not cited."""

    agreement: str = ""  # the agreement, e.g. § 81a Abs. 2 AufenthG
    fee: str = ""  # the fee, e.g. § 47 Abs. 1 Nr. 15 AufenthV
    continuation: str = ""  # continuing after a partial recognition
    deemed_approval: str = ""  # the BA's deemed approval
    preapproval: str = ""  # the pre-approval
    mission: str = ""  # informing the mission abroad
    visa_deadlines: str = ""  # the mission's deadlines
    hearing: str = ""  # the hearing before a refusal
    family: str = ""  # the fee also covers joined family members' cases


class Definition(_Strict):
    name: str = Field(pattern=r"^[a-z0-9_-]+$")
    version: int = Field(ge=1)
    title: str
    start: str
    fee_eur: float = 0
    thresholds: dict[str, dict[int, float]] = {}
    documents: dict[str, str]
    required_documents: dict[str, list[str]]
    completeness_rules: list[Rule] = []
    # Letters: residence purpose -> its title with the provision; the periods
    # and provisions they print (all optional, see docs/definitions.md).
    purposes: dict[str, str] = {}
    letter_periods: LetterPeriods = LetterPeriods()
    references: LegalReferences = LegalReferences()
    # The German mission abroad by the applicant's nationality, as entered
    # (letters to and about the mission name it).
    missions: dict[str, str] = {}
    steps: dict[str, Step]

    def step(self, key: str) -> Step:
        return self.steps[key]

    def purpose_title(self, purpose: str) -> str:
        return self.purposes.get(purpose) or f"§ {purpose} AufenthG"

    def document_label(self, kind: str) -> str:
        return self.documents.get(kind, kind)

    def mission_for(self, nationality: str) -> str | None:
        wanted = nationality.strip().lower()
        return next((v for k, v in self.missions.items() if k.lower() == wanted), None)


# --- parsing and validation -------------------------------------------------


def parse_definition(text: str, organisations: set[str] | None = None) -> Definition:
    """Parse and validate; `organisations` (known slugs) enables that check.

    Raises DefinitionError listing every problem as "line N: path: message".
    """
    try:
        data = yaml.load(text, Loader=SafeLoader)
    except yaml.YAMLError as exc:
        raise DefinitionError(f"not valid YAML: {exc}") from exc
    try:
        definition = Definition.model_validate(data)
    except ValidationError as exc:
        problems = [(tuple(err["loc"]), err["msg"]) for err in exc.errors()]
        raise DefinitionError(_format(problems, _line_index(text))) from None
    problems = list(_semantic_problems(definition, organisations))
    if problems:
        raise DefinitionError(_format(problems, _line_index(text)))
    return definition


def _line_index(text: str) -> dict[tuple, int]:
    """Line of each path in the YAML, for error messages only (a second parse)."""
    return _node_lines(yaml.compose(text, Loader=SafeLoader))


def _node_lines(node, path: tuple = ()) -> dict[tuple, int]:
    index = {path: node.start_mark.line + 1} if node is not None else {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            index.update(_node_lines(value, (*path, key.value)))
            index[(*path, key.value)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            index.update(_node_lines(item, (*path, i)))
    return index


def _format(problems: list[tuple[tuple, str]], lines: dict[tuple, int]) -> str:
    out = []
    for path, message in problems:
        line = next((lines[path[:n]] for n in range(len(path), -1, -1) if path[:n] in lines), 1)
        where = ".".join(str(p) for p in path) or "definition"
        out.append(f"line {line}: {where}: {message}")
    return "\n".join(out)


def _semantic_problems(d: Definition, organisations: set[str] | None):
    if d.start not in d.steps:
        yield ("start",), f"start step {d.start!r} does not exist"
    for purpose, kinds in d.required_documents.items():
        for i, kind in enumerate(kinds):
            if kind not in d.documents:
                yield ("required_documents", purpose, i), f"unknown document {kind!r}"
    if d.purposes:
        for purpose in sorted(set(d.required_documents) - set(d.purposes)):
            yield ("purposes",), f"purpose {purpose!r} has no title"
    for i, rule in enumerate(d.completeness_rules):
        for name in rule.require.thresholds() - set(d.thresholds):
            yield ("completeness_rules", i), f"unknown threshold {name!r}"
    for key, step in d.steps.items():
        for field, message in _step_problems(step, d, organisations):
            yield ("steps", key, *field), message
    yield from _graph_problems(d)


def step_library() -> tuple[set[str], set[str]]:
    """The actions and letters a definition may name, read from the step
    library itself (ACTIONS in flows/steps.py, TITLES in flows/letters.py):
    one registry, no copy to keep equal. Imported here, not at the top,
    because the step library uses this module's types."""
    from serviceplus.flows.letters import TITLES
    from serviceplus.flows.steps import ACTIONS

    return set(ACTIONS), set(TITLES)


def _step_problems(step: Step, d: Definition, organisations: set[str] | None):
    actions, letters = step_library()
    if step.kind == "auto" and step.action not in actions:
        yield ("action",), f"unknown action {step.action!r}"
    if step.action == "send_letter" and step.letter not in letters:
        yield ("letter",), f"unknown letter template {step.letter!r}"
    if step.action == "change_purpose" and step.purpose not in d.required_documents:
        yield ("purpose",), f"unknown residence purpose {step.purpose!r}"
    if step.action == "record_note" and not step.note:
        yield ("note",), "record_note needs a note"
    if step.kind == "human":
        yield from _human_step_problems(step, organisations)
    elif step.employer_answer or step.employer_options or step.employer_recheck:
        yield ("employer_answer",), "only a human step can wait for the employer's answer"
    for i, kind in enumerate(step.documents):
        if kind not in d.documents:
            yield ("documents", i), f"unknown document {kind!r}"
    for i, field in enumerate(step.fields):
        if field.type == "document" and field.name not in d.documents:
            yield ("fields", i), f"unknown document {field.name!r}"
    if (step.fields or step.expires) and step.kind != "human":
        yield ("fields",), "only a human step has fields or an expiry"
    for name, clock_ in (("deadline", step.deadline), ("expires", step.expires)):
        origin = clock_.from_ if clock_ else ""
        if origin.startswith("step:") and origin[5:] not in d.steps:
            yield (name, "from"), f"unknown step {origin[5:]!r}"
    if step.kind == "end" and not step.outcome:
        yield ("outcome",), "an end step needs an outcome"
    if step.kind != "end" and not (step.next or step.routes):
        yield (), "needs next or routes"
    if step.when is not None and not (step.skip_to or step.next):
        yield ("when",), "a conditional step needs skip_to or next"
    conditional = [r for r in step.routes if isinstance(r, Route)] + step.organisation_routes
    for condition in [step.when, *(r.when for r in conditional)]:
        for name in (condition.thresholds() if condition else set()) - set(d.thresholds):
            yield ("when",), f"unknown threshold {name!r}"
    for field, target in [("next", step.next), ("skip_to", step.skip_to)] + [
        ("routes", t) for t in step.route_targets()
    ]:
        if target and target not in d.steps:
            yield (field,), f"route to unknown step {target!r}"


def _human_step_problems(step: Step, organisations: set[str] | None):
    if step.role is None:
        yield ("role",), "a human step needs a role"
    if not step.options:
        yield ("options",), "a human step needs options"
    if organisations is not None and step.organisation not in organisations | {"case"}:
        yield ("organisation",), f"unknown organisation {step.organisation!r}"
    for i, route in enumerate(step.organisation_routes):
        if organisations is not None and route.to not in organisations | {"case"}:
            yield ("organisation_routes", i), f"unknown organisation {route.to!r}"
    if step.organisation_routes and step.organisation_routes[-1].when is not None:
        yield ("organisation_routes",), "the last organisation route needs no condition"
    if isinstance(step.routes, dict) and set(step.routes) != step.outcomes():
        yield ("routes",), "routes must cover exactly the options (and the timeout outcome)"
    timeout = step.on_timeout
    if timeout and timeout.action == "decide" and not timeout.outcome:
        yield ("on_timeout",), "decide needs an outcome"
    if timeout and timeout.action == "escalate" and timeout.role is None:
        yield ("on_timeout",), "escalate needs a role"
    if timeout and step.deadline is None:
        yield ("on_timeout",), "on_timeout needs a deadline"
    values = {o.value for o in step.options}
    for i, field in enumerate(step.fields):
        for value in field.for_:
            if value not in values:
                yield ("fields", i, "for"), f"unknown option {value!r}"
    yield from _employer_answer_problems(step)


def _employer_answer_problems(step: Step):
    if step.employer_answer == "options" and not step.employer_options:
        yield ("employer_options",), "employer_answer options needs employer_options"
    if step.employer_options and step.employer_answer != "options":
        yield ("employer_options",), "employer_options needs employer_answer: options"
    values = {o.value for o in step.options}
    if step.employer_recheck and step.employer_answer != "documents":
        yield ("employer_recheck",), "employer_recheck needs employer_answer: documents"
    if step.employer_recheck and step.employer_recheck not in values:
        yield ("employer_recheck",), f"unknown option {step.employer_recheck!r}"
    for i, value in enumerate(step.employer_options):
        if value not in values:
            yield ("employer_options", i), f"unknown option {value!r}"


def _graph_problems(d: Definition):
    edges = {k: [t for t in s.targets() if t in d.steps] for k, s in d.steps.items()}
    reach = {k: _reachable(k, edges) for k in d.steps}
    if d.start in d.steps:
        for key in d.steps:
            if key != d.start and key not in reach[d.start]:
                yield ("steps", key), "step is unreachable from the start"
    seen: set[str] = set()
    for key in d.steps:
        if key in seen or key not in reach[key]:
            continue
        loop = {m for m in reach[key] if key in reach[m]}
        seen |= loop
        has_human = any(d.steps[m].kind == "human" for m in loop)
        has_exit = any(t not in loop for m in loop for t in edges[m])
        if not has_human and not has_exit:
            yield ("steps", key), f"loop {sorted(loop)} has neither a human step nor an exit"


def _reachable(start: str, edges: dict[str, list[str]]) -> set[str]:
    seen, todo = set(), list(edges.get(start, []))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(edges.get(node, []))
    return seen
