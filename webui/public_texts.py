"""Plain-language texts of the public status page, in one place, German with
English translations (webui/translations, Flask-Babel).

A step is explained by its key; a step this mapping does not know (one a
newer definition version adds) is explained by who must act, so the page
always reads sensibly. Never an internal code, never a clerk's name.
"""

from flask_babel import lazy_gettext as _l

# What the current step means for the employer, by step key.
CURRENT = {
    "intake": _l("Ihr Antrag ist eingegangen und wird erfasst."),
    "fee_notice": _l("Die Vereinbarung und der Gebührenbescheid werden erstellt."),
    "completeness": _l("Die Ausländerbehörde prüft, ob Ihre Unterlagen vollständig sind."),
    "request_documents": _l("Die Ausländerbehörde fordert fehlende Unterlagen an."),
    "await_documents": _l(
        "Es fehlen Unterlagen. Bitte reichen Sie die im Schreiben genannten Unterlagen nach."
    ),
    "recognition": _l("Die Anerkennungsstelle prüft die ausländische Berufsqualifikation."),
    "partial_recognition": _l("Die Berufsqualifikation wurde teilweise anerkannt."),
    "ba_approval": _l("Die Bundesagentur für Arbeit prüft die Zustimmung zur Beschäftigung."),
    "decision": _l("Die Ausländerbehörde entscheidet über die Vorabzustimmung."),
    "preapproval": _l("Die Vorabzustimmung wird erstellt."),
    "refusal": _l("Der Bescheid wird erstellt."),
    "recognition_receipt": _l("Die Anerkennungsstelle bestätigt den Eingang der Unterlagen."),
    "partial_choice": _l(
        "Bitte teilen Sie mit, ob das Verfahren nach § 16d AufenthG fortgesetzt werden soll."
    ),
    "ba_answer": _l("Die Bundesagentur für Arbeit hat eine Rückfrage. Bitte beantworten Sie sie."),
    "hearing": _l("Die Ausländerbehörde hört Sie vor einer Entscheidung an."),
    "await_hearing": _l(
        "Sie können Stellung nehmen oder den Antrag zurücknehmen (Frist: siehe Anhörung)."
    ),
    # Version 3 (agreement, fee, visa stage).
    "agreement": _l("Die Vereinbarung wird Ihnen zur Unterschrift zugesandt."),
    "await_agreement": _l(
        "Bitte senden Sie die unterschriebene Vereinbarung zurück (Upload hier möglich)."
    ),
    "agreement_reminder": _l("Die Ausländerbehörde erinnert an die unterschriebene Vereinbarung."),
    "confirm_withdrawal": _l(
        "Die unterschriebene Vereinbarung fehlt noch; ohne sie endet das Verfahren."
    ),
    "fee_assessment": _l("Der Gebührenbescheid wird erstellt."),
    "fee_payment": _l("Die Ausländerbehörde wartet auf den Eingang der Gebühr."),
    "inform_mission": _l("Die Auslandsvertretung wird über die Vorabzustimmung unterrichtet."),
    "azr_entry": _l("Die Vorabzustimmung wird im Ausländerzentralregister eingetragen."),
    "visa_appointment": _l(
        "Visumverfahren: Die Fachkraft beantragt das Visum bei der Auslandsvertretung."
    ),
    "visa_decision": _l("Visumverfahren: Die Auslandsvertretung entscheidet über das Visum."),
}

# A step without its own text: explained by who must act now.
CURRENT_BY_ACTOR = {
    "employer": _l("Die Ausländerbehörde wartet auf Ihre Antwort."),
    "authority": _l("Die Ausländerbehörde bearbeitet Ihren Antrag."),
    "recognition": _l("Die Anerkennungsstelle prüft die ausländische Berufsqualifikation."),
    "ba": _l("Die Bundesagentur für Arbeit prüft die Zustimmung zur Beschäftigung."),
}

# Who must act now.
ACTOR = {
    "employer": _l("Sie (der Arbeitgeber)"),
    "authority": _l("die Ausländerbehörde"),
    "recognition": _l("die Anerkennungsstelle"),
    "ba": _l("die Bundesagentur für Arbeit"),
}

# A finished step, by step key; others by who acted.
PAST = {
    "intake": _l("Antrag eingegangen"),
    "fee_notice": _l("Vereinbarung und Gebührenbescheid versandt"),
    "completeness": _l("Unterlagen auf Vollständigkeit geprüft"),
    "request_documents": _l("Fehlende Unterlagen angefordert"),
    "await_documents": _l("Nachgereichte Unterlagen erfasst"),
    "recognition": _l("Berufsqualifikation geprüft"),
    "partial_recognition": _l("Hinweis zur teilweisen Anerkennung versandt"),
    "ba_approval": _l("Bundesagentur für Arbeit beteiligt"),
    "decision": _l("Über die Vorabzustimmung entschieden"),
    "preapproval": _l("Vorabzustimmung versandt"),
    "refusal": _l("Bescheid versandt"),
    "recognition_receipt": _l("Eingang bei der Anerkennungsstelle bestätigt"),
    "partial_choice": _l("Ihre Wahl nach der teilweisen Anerkennung erfasst"),
    "change_to_16d": _l("Verfahren nach § 16d AufenthG fortgesetzt"),
    "ba_answer": _l("Antwort an die Bundesagentur für Arbeit weitergeleitet"),
    "hearing": _l("Anhörungsschreiben versandt"),
    "await_hearing": _l("Anhörung abgeschlossen"),
    # Version 3 (agreement, fee, visa stage).
    "agreement": _l("Vereinbarung zur Unterschrift versandt"),
    "await_agreement": _l("Vereinbarung erfasst"),
    "agreement_reminder": _l("Erinnerung an die Vereinbarung versandt"),
    "confirm_withdrawal": _l("Ausstehende Vereinbarung bearbeitet"),
    "fee_assessment": _l("Gebührenbescheid versandt"),
    "fee_payment": _l("Zahlung der Gebühr erfasst"),
    "inform_mission": _l("Auslandsvertretung unterrichtet"),
    "azr_entry": _l("Im Ausländerzentralregister eingetragen"),
    "visa_appointment": _l("Termin zur Visumantragstellung erfasst"),
    "visa_decision": _l("Entscheidung über das Visum erfasst"),
}
PAST_BY_ACTOR = {
    "employer": _l("Ihre Antwort ist eingegangen"),
    "authority": _l("Bearbeitungsschritt der Ausländerbehörde abgeschlossen"),
    "recognition": _l("Prüfung der Anerkennungsstelle abgeschlossen"),
    "ba": _l("Beteiligung der Bundesagentur für Arbeit abgeschlossen"),
}

OUTCOME = {
    "approved": _l("Das Verfahren ist abgeschlossen: Die Vorabzustimmung wurde erteilt."),
    "refused": _l("Das Verfahren ist abgeschlossen: Die Vorabzustimmung wurde abgelehnt."),
    "withdrawn": _l("Das Verfahren ist abgeschlossen: Der Antrag wurde zurückgezogen."),
    # Version 3 (agreement, fee, visa stage).
    "visa_issued": _l("Das Verfahren ist abgeschlossen: Das Visum wurde erteilt."),
    "visa_refused": _l("Das Verfahren ist abgeschlossen: Das Visum wurde abgelehnt."),
    "lapsed": _l("Das Verfahren ist abgeschlossen: Die Vorabzustimmung ist abgelaufen."),
}
OUTCOME_OTHER = _l("Das Verfahren ist abgeschlossen.")

# Letters by kind (the archived title is German only).
LETTER = {
    "receipt": _l("Eingangsbestätigung"),
    "fee_notice": _l("Vereinbarung und Gebührenbescheid"),
    "missing_documents": _l("Nachforderung von Unterlagen"),
    "partial_recognition": _l("Hinweis: teilweise Anerkennung der Berufsqualifikation"),
    "hearing": _l("Anhörung vor einer Ablehnung"),
    "preapproval": _l("Vorabzustimmung nach § 81a AufenthG"),
    # Version 3 (agreement, fee, visa stage).
    "agreement": _l("Vereinbarung zur Unterzeichnung"),
    "agreement_reminder": _l("Erinnerung: unterschriebene Vereinbarung"),
    "fee_assessment": _l("Gebührenbescheid"),
}


def current_text(key: str, actor: str) -> str:
    return CURRENT.get(key) or CURRENT_BY_ACTOR.get(actor) or CURRENT_BY_ACTOR["authority"]


def actor_text(actor: str) -> str:
    return ACTOR.get(actor, ACTOR["authority"])


def past_text(key: str, actor: str) -> str:
    return PAST.get(key) or PAST_BY_ACTOR.get(actor) or PAST_BY_ACTOR["authority"]


def outcome_text(outcome: str | None) -> str:
    return OUTCOME.get(outcome or "", OUTCOME_OTHER)


def letter_text(kind: str, title: str) -> str:
    return LETTER.get(kind, title)
