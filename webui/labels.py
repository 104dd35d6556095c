"""German labels for case and task statuses, in one place so that no
template shows a blank or an English status."""

from serviceplus.models.tables import CaseStatus, Role, TaskStatus

CASE_STATUS = {
    CaseStatus.running: "in Bearbeitung",
    CaseStatus.waiting: "wartet auf Entscheidung",
    CaseStatus.completed: "abgeschlossen",
    CaseStatus.failed: "Störung",
    CaseStatus.cancelled: "abgebrochen",
}
TASK_STATUS = {
    TaskStatus.open: "offen",
    TaskStatus.claimed: "in Bearbeitung",
    TaskStatus.completed: "erledigt",
    TaskStatus.cancelled: "abgebrochen",
}


# States of a case's Prefect flow run, as the incidents page shows them.
RUN_STATE = {
    "Failed": "fehlgeschlagen",
    "Crashed": "abgestürzt",
    "Running": "hängt (kein Prozess)",
    "Pending": "hängt (kein Prozess)",
}


def run_state(name: str) -> str:
    return RUN_STATE.get(name, name)


def case_status(status: str) -> str:
    # An unknown value (a status added later) shows as itself, never blank.
    return CASE_STATUS.get(status, status)


def task_status(status: str) -> str:
    return TASK_STATUS.get(status, status)


ROLE = {
    Role.clerk: "Sachbearbeitung",
    Role.coordinator: "Koordination",
    Role.admin: "Verwaltung",
    Role.adviser: "Beratung",
    Role.network: "Netzwerk-Überblick",
}


def role(value: str) -> str:
    return ROLE.get(value, value)


# A closed case's outcome (the definition's end steps, and a coordinator's cancel).
CASE_OUTCOME = {
    "approved": "Vorabzustimmung erteilt",
    "refused": "abgelehnt",
    "withdrawn": "zurückgezogen",
    "cancelled": "abgebrochen",
}


def case_outcome(value: str | None) -> str:
    return CASE_OUTCOME.get(value, value) if value else "–"


def case_state(status: str, outcome: str | None) -> str:
    """Status and outcome in one phrase, without saying the same word twice
    ("abgebrochen", not "abgebrochen (abgebrochen)")."""
    state = case_status(status)
    if not outcome or case_outcome(outcome) == state:
        return state
    return f"{state} – {case_outcome(outcome)}"


# Outcomes of automatic steps (the step library's actions), as arrows show them.
STEP_OUTCOME = {"complete": "vollständig", "incomplete": "unvollständig"}


def step_outcome(value: str) -> str:
    return STEP_OUTCOME.get(value, value)


# The state of one case's flow run, as its monitoring page shows it.
FLOW_RUN_STATE = {
    "Scheduled": "geplant",
    "Pending": "wird gestartet",
    "Running": "läuft",
    "Suspended": "angehalten, wartet auf eine Entscheidung",
    "Resuming": "wird fortgesetzt",
    "Retrying": "wird wiederholt",
    "Completed": "abgeschlossen",
    "Failed": "fehlgeschlagen",
    "Crashed": "abgestürzt",
    "Cancelling": "wird abgebrochen",
    "Cancelled": "abgebrochen",
    "nicht erreichbar": "nicht erreichbar",
}


def flow_run_state(name: str) -> str:
    return FLOW_RUN_STATE.get(name, name)
