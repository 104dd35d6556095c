"""What a new case must bring, read from the active definition: the facts
its conditions test (so the form asks for them) and the documents each
residence purpose requires. Nothing here is a figure of the procedure: all
of it comes from the definition."""

from dataclasses import dataclass, field
from typing import Any

from serviceplus.models.definition import Definition
from serviceplus.models.services.cases import FAMILY_MEMBER_FACT

FACTS_PREFIX = "facts."


@dataclass
class FactSpec:
    """One case fact a condition tests, and how the form asks for it:
    a number (gte/lte), yes/no (equals true/false) or one of some choices."""

    name: str
    kind: str  # "number" | "yesno" | "choice"
    choices: list[str] = field(default_factory=list)


def facts_the_rules_use(definition: Definition) -> list[FactSpec]:
    """Every `facts.<name>` the definition's conditions read, in the order
    they first appear."""
    found: dict[str, FactSpec] = {}
    _collect(definition.model_dump(by_alias=True, exclude_none=True), found)
    # Set by the app when a case joins its principal, never typed in.
    found.pop(FAMILY_MEMBER_FACT, None)
    return list(found.values())


def _collect(node: Any, found: dict[str, FactSpec]) -> None:
    if isinstance(node, list):
        for item in node:
            _collect(item, found)
        return
    if not isinstance(node, dict):
        return
    path = node.get("fact")
    if isinstance(path, str) and path.startswith(FACTS_PREFIX):
        _add(found, path.removeprefix(FACTS_PREFIX), node)
    for value in node.values():
        _collect(value, found)


def _add(found: dict[str, FactSpec], name: str, condition: dict) -> None:
    tested = [condition.get("equals"), *(condition.get("in") or [])]
    if "gte" in condition or "lte" in condition:
        kind = "number"
    elif any(isinstance(v, bool) for v in tested):
        kind = "yesno"
    else:
        kind = "choice"
    spec = found.setdefault(name, FactSpec(name, kind))
    if spec.kind == "choice" and kind == "choice":
        spec.choices += [str(v) for v in tested if v is not None and str(v) not in spec.choices]


def required_documents(definition: Definition) -> dict[str, list[tuple[str, str]]]:
    """Residence purpose -> its required documents as (kind, label)."""
    return {
        purpose: [(kind, definition.document_label(kind)) for kind in kinds]
        for purpose, kinds in definition.required_documents.items()
    }


class FactError(ValueError):
    """A fact typed in the form that is not what its condition needs."""


def parse_fact(spec: FactSpec, raw: str) -> Any:
    """The form's text as the value conditions compare; None when empty.
    Numbers may use a German decimal comma."""
    text = (raw or "").strip()
    if not text:
        return None
    if spec.kind == "yesno":
        if text not in ("yes", "no"):
            raise FactError("Bitte wählen Sie ja oder nein.")
        return text == "yes"
    if spec.kind == "choice":
        if text not in spec.choices:
            raise FactError("Bitte wählen Sie einen der angebotenen Werte.")
        return text
    try:
        number = float(text.replace(".", "").replace(",", ".") if "," in text else text)
    except ValueError:
        raise FactError("Bitte geben Sie eine Zahl ein, z. B. 52000 oder 3,5.") from None
    if number < 0 or number != number or number in (float("inf"), float("-inf")):
        raise FactError("Bitte geben Sie eine Zahl ab 0 ein.")
    return int(number) if number.is_integer() else number
