"""The definition checker's findings as an admin reads them: in German, each
with its line, without follow-on errors. models/definition.py reports in
English ("line N: path: message", or the YAML parser's text); this module
translates, so the language of the definition stays one plain checker."""

import difflib
import re
from dataclasses import dataclass, field

import yaml

from serviceplus.models.definition import DefinitionError


@dataclass(frozen=True)
class Problem:
    line: int
    where: str  # the place in the definition, in German ("Schritt „decision“ › deadline")
    message: str
    path: str = field(default="", compare=False)  # the checker's path, for follow-ons


# (English pattern, German text); \1 is the quoted name from the pattern.
MESSAGES = [
    (r"unknown action '(.+)'", r"Unbekannte Aktion „\1“."),
    (r"unknown letter template '(.+)'", r"Unbekannte Briefvorlage „\1“."),
    (r"unknown document '(.+)'", r"Unbekannte Unterlagenart „\1“ (fehlt unter „documents“)."),
    (r"unknown threshold '(.+)'", r"Unbekannter Schwellenwert „\1“ (fehlt unter „thresholds“)."),
    (r"unknown organisation '(.+)'", r"Unbekannte Organisation „\1“."),
    (r"route to unknown step '(.+)'", r"Weg zu einem Schritt „\1“, den es nicht gibt."),
    (r"start step '(.+)' does not exist", r"Den Startschritt „\1“ gibt es nicht."),
    (r"an end step needs an outcome", "Ein Endschritt braucht ein Ergebnis (outcome)."),
    (r"needs next or routes", "Der Schritt braucht einen Nachfolger (next oder routes)."),
    (
        r"a conditional step needs skip_to or next",
        "Ein bedingter Schritt braucht skip_to oder next.",
    ),
    (r"a human step needs a role", "Ein Bearbeitungsschritt braucht eine Rolle (role)."),
    (r"a human step needs options", "Ein Bearbeitungsschritt braucht Entscheidungsoptionen."),
    (
        r"routes must cover exactly the options.*",
        "Die Wege (routes) müssen genau die Optionen abdecken, dazu das Ergebnis bei Fristablauf.",
    ),
    (r"decide needs an outcome", "Eine Entscheidung bei Fristablauf braucht ein Ergebnis."),
    (r"escalate needs a role", "Eine Weitergabe bei Fristablauf braucht eine Rolle."),
    (r"on_timeout needs a deadline", "Eine Regel bei Fristablauf (on_timeout) braucht eine Frist."),
    (r"unknown option '(.+)'", r"Unbekannte Option „\1“ (fehlt unter „options“)."),
    (r"unknown step '(.+)'", r"Den Schritt „\1“ gibt es nicht."),
    (
        r"only a human step has fields or an expiry",
        "Eingabefelder (fields) und eine Gültigkeitsfrist (expires) gibt es nur bei "
        "Bearbeitungsschritten.",
    ),
    (r"step is unreachable from the start", "Der Schritt ist vom Start aus nicht erreichbar."),
    (
        r"loop (\[.*\]) has neither a human step nor an exit",
        r"Die Schleife \1 hat weder einen Bearbeitungsschritt noch einen Ausgang.",
    ),
    (r"name and version must be (\S+) and (\d+)", r"Name und Version müssen „\1“ und \2 sein."),
    (r".* exists already; a change needs a new version", "Diese Version gibt es schon."),
    (r"Field required", "Pflichtangabe fehlt."),
    (r"Extra inputs are not permitted", "Unbekannter Eintrag (Tippfehler im Namen?)."),
    (r"Input should be a valid timedelta.*", "Ungültige Dauer; erwartet wird z. B. P2W oder P14D."),
    (r"Input should be a valid integer.*", "Hier wird eine ganze Zahl erwartet."),
    (r"Input should be a valid number.*", "Hier wird eine Zahl erwartet."),
    (r"Input should be a valid string.*", "Hier wird ein Text erwartet."),
    (r"Input should be a valid boolean.*", "Hier wird true oder false erwartet."),
    (r"Input should be a valid dictionary.*", "Hier werden Einträge „Name: Wert“ erwartet."),
    (r"Input should be a valid list.*", "Hier wird eine Liste erwartet."),
    (r"Input should be greater than or equal to (\S+)", r"Der Wert muss mindestens \1 sein."),
    (r"String should match pattern.*", "Nur Kleinbuchstaben, Ziffern, „-“ und „_“ sind erlaubt."),
    (r"Input should be (.+)", r"Erlaubt ist: \1."),
]

YAML_PROBLEMS = {
    "mapping values are not allowed here": "Doppelpunkt an unerwarteter Stelle "
    "(Text mit Doppelpunkt bitte in Anführungszeichen setzen).",
    "could not find expected ':'": "Hier fehlt ein Doppelpunkt.",
    "found character '\\t' that cannot start any token": "Tabulatoren sind nicht erlaubt; "
    "bitte mit Leerzeichen einrücken.",
    "did not find expected key": "Die Einrückung stimmt nicht.",
    "found undefined alias": "Unbekannter Verweis (*Name).",
    "found unexpected end of stream": "Der Text endet mitten in einem Eintrag "
    "(fehlt ein schließendes Anführungszeichen?).",
}

UNKNOWN_TARGET = ("Weg zu einem Schritt", "Den Startschritt")
UNREACHABLE = "Der Schritt ist vom Start aus nicht erreichbar."


def translate(message: str) -> str:
    for pattern, german in MESSAGES:
        match = re.fullmatch(pattern, message)
        if match:
            german = match.expand(german)
            return re.sub(r"'([^']*)'", r"„\1“", german).replace("“ or „", "“ oder „")
    return f"Ungültige Angabe ({message})."


def _where(path: str) -> str:
    parts = path.split(".")
    if parts[:1] == ["steps"] and len(parts) > 1:
        rest = " › ".join(parts[2:])
        return f"Schritt „{parts[1]}“" + (f" › {rest}" if rest else "")
    return "Definition" if path == "definition" else " › ".join(parts)


def _yaml_problem(text: str) -> Problem:
    try:
        yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = YAML_PROBLEMS.get(exc.problem or "", "Der Text ist kein gültiges YAML.")
        return Problem(line, "Aufbau", problem)
    return Problem(1, "Aufbau", "Der Text ist kein gültiges YAML.")


def problems(text: str, error: DefinitionError) -> list[Problem]:
    """Each finding of `error` (raised for `text`) in German, by line. While
    a route points to a step that does not exist, "unreachable" findings are
    dropped: they follow from that one mistake and hide it."""
    message = str(error)
    if message.startswith("not valid YAML"):
        return [_yaml_problem(text)]
    found = []
    for entry in message.splitlines():
        match = re.fullmatch(r"line (\d+): (\S+): (.*)", entry) or re.fullmatch(
            r"line (\d+)(): (.*)", entry
        )
        if match:
            line, path, english = match.groups()
            where = _where(path) if path else "Definition"
            found.append(Problem(int(line), where, translate(english), path))
        else:
            found.append(Problem(1, "Definition", translate(entry)))
    if any(p.message.startswith(UNKNOWN_TARGET) for p in found):
        found = [p for p in found if p.message != UNREACHABLE]
    return sorted(_misspelt_fields(found, message), key=lambda p: p.line)


def _misspelt_fields(found: list[Problem], message: str) -> list[Problem]:
    """A misspelt field name yields "unknown entry" and "required field
    missing" side by side: report it once, with the likely intended name."""
    missing = {p.path: p for p in found if p.message == "Pflichtangabe fehlt."}
    out = []
    for problem in found:
        parent, _, name = problem.path.rpartition(".")
        if problem.message.startswith("Unbekannter Eintrag") and parent:
            names = [m.rpartition(".")[2] for m in missing if m.rpartition(".")[0] == parent]
            guess = difflib.get_close_matches(name, names, n=1)
            if guess:
                missing.pop(f"{parent}.{guess[0]}")
                problem = Problem(
                    problem.line,
                    problem.where,
                    f"Unbekannter Eintrag „{name}“ – gemeint ist wohl „{guess[0]}“.",
                    problem.path,
                )
        out.append(problem)
    kept = set(map(id, missing.values()))
    return [p for p in out if p.message != "Pflichtangabe fehlt." or id(p) in kept]
