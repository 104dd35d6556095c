"""German labels for case and task statuses, in one place so that no
template shows a blank or an English status."""

import re

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
    # Version 3 closes after the visa stage (Visumverfahren).
    "visa_issued": "Visum erteilt",
    "visa_refused": "Visum abgelehnt",
    "lapsed": "Vorabzustimmung abgelaufen",
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
    "Late": "wartet auf Ausführung",  # scheduled and due for over 15 s
    "Completed": "abgeschlossen",
    "Failed": "fehlgeschlagen",
    "Crashed": "abgestürzt",
    "Cancelling": "wird abgebrochen",
    "Cancelled": "abgebrochen",
    "Cancelled by ServicePLUS": "in ServicePLUS abgebrochen",
    "nicht erreichbar": "nicht erreichbar",
}


def flow_run_state(name: str) -> str:
    return FLOW_RUN_STATE.get(name, name)


# The history of a case: what happened, in German.
AUDIT_ACTION = {
    "case_cancelled": "Fall abgebrochen",
    "password_reset": "Passwort von der Verwaltung zurückgesetzt",
    "task_values_recorded": "Angaben zur Entscheidung erfasst",
    "case_closed": "Fall abgeschlossen",
    "case_created": "Fall angelegt",
    "case_handed_over": "an andere Ausländerbehörde abgegeben",
    "case_received": "von anderer Ausländerbehörde übernommen",
    "case_migrated": "auf neue Version umgestellt",
    "case_not_migrated": "nicht auf die neue Version umgestellt",
    "comment_added": "Kommentar",
    "completeness_rechecked": "Vollständigkeit erneut geprüft",
    "deadline_extended": "Frist verlängert",
    "document_added": "Unterlage hinzugefügt",
    "employer_answered": "Antwort des Arbeitgebers",
    "family_member_added": "Familienangehörige verbunden",
    "employer_document_added": "Unterlage des Arbeitgebers",
    "flow_failed": "Störung des Ablaufs",
    "cancel_undone": "Abbruch von außen rückgängig gemacht",
    "flow_retried": "Ablauf erneut gestartet",
    "flow_stuck": "Ablauf ohne Prozess erkannt",
    "internal_note": "Aktenvermerk",
    "letter_created": "Schreiben erstellt",
    "letter_downloaded": "Schreiben abgerufen",
    "personal_data_deleted": "personenbezogene Daten gelöscht",
    "precheck_accepted": "Vorprüfung übernommen",
    "precheck_handed_over": "aus der Vorprüfung übergeben",
    "purpose_changed": "Aufenthaltszweck geändert",
    "representative_changed": "Bevollmächtigte geändert",
    "resume_refused": "Fortsetzung von außen abgelehnt",
    "status_letter_downloaded": "Schreiben über den Statuslink abgerufen",
    "status_link_issued": "Statuslink erzeugt",
    "status_link_revoked": "Statuslink gesperrt",
    "status_viewed": "Statusseite aufgerufen",
    "step_executed": "Schritt ausgeführt",
    "step_skipped": "Schritt übersprungen",
    "task_claimed": "Aufgabe übernommen",
    "task_completed": "Aufgabe erledigt",
    "task_delegated": "Aufgabe abgegeben",
    "task_escalated": "Aufgabe eskaliert",
    "task_opened": "Aufgabe geöffnet",
    "task_priority": "Priorität gesetzt",
    "task_reassigned": "Aufgabe neu zugewiesen",
    "task_reminder": "Erinnerung",
    "task_taken_back": "Aufgabe zurückgenommen",
    "task_unclaimed": "Aufgabe freigegeben",
    "four_eyes_confirmer_set": "Bestätigung im Vier-Augen-Prinzip geregelt",
    # Events without a case (administration, logins, pre-checks).
    "definition_activated": "Verfahrensversion aktiviert",
    "definition_draft_saved": "Entwurf einer Verfahrensversion gespeichert",
    "definition_published": "Verfahrensversion veröffentlicht",
    "login_locked": "Anmeldung gesperrt",
    "login_slowed": "Anmeldung verzögert",
    "organisation_settings_changed": "Briefeinstellungen geändert",
    "password_changed": "Passwort geändert",
    "precheck_created": "Vorprüfung angelegt",
    "precheck_documents_added": "Unterlagen zur Vorprüfung hinzugefügt",
    "user_created": "Benutzerkonto angelegt",
    "user_deactivated": "Benutzerkonto deaktiviert",
    "user_role_changed": "Rolle geändert",
}
AUDIT_ACTOR = {"system": "System", "employer": "Arbeitgeber (Statuslink)", "demo": "Demo"}


def audit_action(value: str) -> str:
    return AUDIT_ACTION.get(value, value.replace("_", " "))


def audit_actor(value: str) -> str:
    return AUDIT_ACTOR.get(value, value)


# Case facts the definitions' conditions test, as the new-case form asks for
# them (models/services/intake.py finds which). A fact without a label here
# shows its own name: tests/test_new_case_form.py keeps this list complete.
FACT_LABELS = {
    "gross_annual_salary_eur": "Bruttojahresgehalt laut Arbeitsvertrag (EUR)",
    "contract_months": "Dauer des Arbeitsvertrags (Monate)",
    "anabin_equivalent": "Abschluss in anabin als gleichwertig bewertet (H+)",
    "shortage_occupation": "Engpassberuf",
    "years_since_degree": "Jahre seit dem Hochschulabschluss",
    "it_specialist_without_degree": "IT-Fachkraft ohne Hochschulabschluss",
    "it_experience_years": "Berufserfahrung in der IT (Jahre)",
    "first_permit": "Erste Aufenthaltserlaubnis in Deutschland",
    "pension_provision": "Angemessene Altersversorgung nachgewiesen",
    "occupation_group": "Berufsgruppe",
}
FACT_CHOICES = {
    "health": "Gesundheits- und Pflegeberuf",
    "craft": "Handwerk",
}


def fact_label(name: str) -> str:
    return FACT_LABELS.get(name, name)


def fact_choice(value: str) -> str:
    return FACT_CHOICES.get(value, value)


# Decisions that are not options of a step: four eyes, deemed approval.
DECISION = {
    "confirm": "Vorschlag bestätigt",
    "send_back": "zur Überarbeitung zurückgegeben",
    "deemed": "Zustimmung gilt als erteilt (Fristablauf)",
}


def decision(task, value: str | None = None) -> str:
    """The German label of a decision on `task` (default: the one it got):
    the option's label from the task's form, else a known decision."""
    value = task.decision if value is None else value
    if not value:
        return "–"
    for option in task.form.get("options", []):
        if option["value"] == value:
            return option["label"]
    return DECISION.get(value, value.replace("_", " "))


def _outcome(code: str) -> str:
    return DECISION.get(code) or CASE_OUTCOME.get(code) or code.replace("_", " ")


def step_title(titles: dict[str, str], key: str | None) -> str:
    """A step key as its title; a four-eyes confirmation names its step."""
    if not key:
        return "–"
    if key in titles:
        return titles[key]
    base = key.removesuffix(".confirm")
    title = titles.get(base, base.replace("_", " "))
    return f"{title} (Bestätigung)" if base != key else title


# Codes some events store in their text: the outcome a deadline decided
# ("Fristablauf – deemed") and the role a task was escalated to ("→ coordinator").
_DEADLINE_OUTCOME = re.compile(r"Fristablauf – ([a-z_]+)")
_ESCALATED_TO = re.compile(r" → ([a-z_]+)$")


def audit_detail(action: str, detail: str) -> str:
    """An event's detail; a few events store a code there (the outcome of a
    closed case, of a deadline, a role), shown by its label."""
    if action == "case_closed":
        return case_outcome(detail)
    detail = _DEADLINE_OUTCOME.sub(lambda m: f"Fristablauf – {_outcome(m.group(1))}", detail)
    if action == "task_escalated":
        detail = _ESCALATED_TO.sub(lambda m: f" → {role(m.group(1))}", detail)
    return detail


def proposal(task) -> str:
    """What a four-eyes confirmation task confirms, in German: the proposal's
    option label, kept in the confirm option ("Vorschlag bestätigen: …")."""
    for option in task.form.get("options", []):
        if option["value"] == "confirm" and ": " in option["label"]:
            return option["label"].split(": ", 1)[1]
    return DECISION.get(task.proposal, (task.proposal or "–").replace("_", " "))
