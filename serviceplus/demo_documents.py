"""Demo documents that look like the real thing: a passport data page, an
employment contract, the employer's declaration with the job description,
a qualification certificate, a power of attorney and a CV, filled with the
demo case's fake data and marked "MUSTER" so nobody takes them for real."""

import hashlib
from datetime import date

from jinja2 import Environment

PAGE = """<!doctype html>
<html lang="de"><head><meta charset="utf-8"><title>{{ title }}</title><style>
@page { size: A4; margin: 22mm 20mm; }
body { font-family: "DejaVu Sans", sans-serif; font-size: 10.5pt; line-height: 1.45; }
h1 { font-size: 16pt; margin: 0 0 4mm; }
.muster { position: fixed; top: 95mm; left: 5mm; transform: rotate(-30deg);
  font-size: 96pt; font-weight: bold; color: rgba(200, 0, 0, 0.18); letter-spacing: 8mm; }
.stamp { color: #b00; font-weight: bold; border: 2px solid #b00; padding: 1mm 3mm;
  display: inline-block; margin-bottom: 5mm; }
table { border-collapse: collapse; width: 100%; margin: 3mm 0; }
td { border-bottom: 1px solid #999; padding: 1.5mm 2mm; vertical-align: top; }
td:first-child { width: 38%; color: #444; }
.passport { border: 1.5px solid #334; border-radius: 4mm; padding: 6mm; background: #eef2f7; }
.mrz { font-family: "DejaVu Sans Mono", monospace; font-size: 11pt; margin-top: 6mm;
  letter-spacing: 0.6mm; }
.sign { margin-top: 16mm; border-top: 1px solid #000; width: 70mm; padding-top: 1mm; }
</style></head><body>
<div class="muster">MUSTER</div>
<p class="stamp">MUSTER – Demodokument ohne Gültigkeit</p>
<h1>{{ title }}</h1>
{{ body }}
</body></html>"""

BODIES = {
    "passport": """
<div class="passport">
<p><strong>REISEPASS / PASSPORT – Datenseite</strong> (Muster)</p>
<table>
<tr><td>Name / Surname</td><td>{{ surname }}</td></tr>
<tr><td>Vornamen / Given names</td><td>{{ given_names }}</td></tr>
<tr><td>Staatsangehörigkeit / Nationality</td><td>{{ nationality }}</td></tr>
<tr><td>Geburtsdatum / Date of birth</td><td>{{ birth_date }}</td></tr>
<tr><td>Passnummer / Passport No.</td><td>{{ passport_no }}</td></tr>
<tr><td>Ausstellungsdatum / Date of issue</td><td>{{ issued }}</td></tr>
<tr><td>Gültig bis / Date of expiry</td><td>{{ valid_until }}</td></tr>
</table>
<p class="mrz">{{ mrz_1 }}<br>{{ mrz_2 }}</p>
</div>""",
    "power_of_attorney": """
<p>Hiermit bevollmächtige ich, <strong>{{ applicant }}</strong>, geboren am {{ birth_date }},
Staatsangehörigkeit {{ nationality }}, meinen künftigen Arbeitgeber</p>
<p><strong>{{ employer }}</strong>, {{ address }},</p>
<p>das beschleunigte Fachkräfteverfahren nach § 81a AufenthG bei der zuständigen
Ausländerbehörde für mich zu beantragen und mich darin zu vertreten, einschließlich der
Verfahren zur Anerkennung meiner Berufsqualifikation und der Zustimmung der
Bundesagentur für Arbeit.</p>
<p>Die Vollmacht gilt bis zum Abschluss des Verfahrens.</p>
<p class="sign">Ort, Datum, Unterschrift {{ applicant }}</p>""",
    "employment_contract": """
<p>zwischen <strong>{{ employer }}</strong>, {{ address }} (Arbeitgeber)<br>
und <strong>{{ applicant }}</strong>, geboren am {{ birth_date }} (Arbeitnehmer/in)</p>
<p><strong>§ 1 Beginn und Tätigkeit.</strong> Das Arbeitsverhältnis beginnt mit der Einreise,
frühestens am {{ entry }}. Die Arbeitnehmerin/der Arbeitnehmer wird als
{{ occupation }} beschäftigt.</p>
<p><strong>§ 2 Dauer.</strong> {{ duration }}. Die ersten sechs Monate gelten als Probezeit.</p>
<p><strong>§ 3 Arbeitszeit.</strong> Die regelmäßige wöchentliche Arbeitszeit beträgt
40 Stunden.</p>
<p><strong>§ 4 Vergütung.</strong> Das Bruttojahresgehalt beträgt {{ salary }} EUR, zahlbar
in zwölf gleichen Monatsraten jeweils zum Monatsende.</p>
<p><strong>§ 5 Urlaub.</strong> Der Urlaubsanspruch beträgt 30 Arbeitstage im Kalenderjahr.</p>
<p><strong>§ 6 Aufschiebende Bedingung.</strong> Dieser Vertrag steht unter der Bedingung,
dass der erforderliche Aufenthaltstitel erteilt wird.</p>
<p class="sign">{{ employer }}</p><p class="sign">{{ applicant }}</p>""",
    "employer_declaration": """
<p>Angaben des Arbeitgebers zur Beschäftigung (Stellenbeschreibung)</p>
<table>
<tr><td>Arbeitgeber</td><td>{{ employer }}, {{ address }}</td></tr>
<tr><td>Beschäftigte Person</td><td>{{ applicant }}, geboren am {{ birth_date }}</td></tr>
<tr><td>Berufsbezeichnung</td><td>{{ occupation }}</td></tr>
<tr><td>Tätigkeiten</td><td>{{ duties }}</td></tr>
<tr><td>Erforderliche Qualifikation</td><td>abgeschlossene Berufsausbildung oder Studium
als {{ occupation }}</td></tr>
<tr><td>Arbeitszeit</td><td>40 Stunden pro Woche</td></tr>
<tr><td>Bruttojahresgehalt</td><td>{{ salary }} EUR, tarifüblich</td></tr>
<tr><td>Beschäftigungsort</td><td>{{ address }}</td></tr>
</table>
<p>Der Arbeitgeber versichert, dass die Arbeitsbedingungen denen vergleichbarer
inländischer Beschäftigter entsprechen.</p>
<p class="sign">{{ employer }}, Personalabteilung</p>""",
    "qualification": """
<p style="text-align:center"><strong>ZEUGNIS ÜBER DEN BERUFSABSCHLUSS</strong><br>
(beglaubigte deutsche Übersetzung, Muster)</p>
<p>Hiermit wird bescheinigt, dass <strong>{{ applicant }}</strong>, geboren am
{{ birth_date }}, die staatliche Abschlussprüfung im Ausbildungsberuf bzw.
Studiengang <strong>{{ occupation }}</strong> mit der Gesamtnote „gut“ bestanden hat.</p>
<table>
<tr><td>Ausbildungsdauer</td><td>3 Jahre, Vollzeit</td></tr>
<tr><td>Theoretischer Unterricht</td><td>2.100 Stunden</td></tr>
<tr><td>Praktische Ausbildung</td><td>2.500 Stunden</td></tr>
<tr><td>Abschluss</td><td>{{ finished }}</td></tr>
</table>
<p>Die Übersetzung stimmt mit dem Original überein.</p>
<p class="sign">Öffentlich bestellte Übersetzerin (Muster)</p>""",
    "cv": """
<table>
<tr><td>Name</td><td>{{ applicant }}</td></tr>
<tr><td>Geburtsdatum</td><td>{{ birth_date }}</td></tr>
<tr><td>Staatsangehörigkeit</td><td>{{ nationality }}</td></tr>
</table>
<p><strong>Berufserfahrung</strong></p>
<table>
<tr><td>seit {{ finished }}</td><td>{{ occupation }} in einem Unternehmen im Heimatland</td></tr>
</table>
<p><strong>Ausbildung</strong></p>
<table><tr><td>bis {{ finished }}</td><td>Abschluss als {{ occupation }}</td></tr></table>
<p><strong>Sprachen</strong>: Deutsch (B1), Englisch (B2)</p>
<p class="sign">{{ applicant }}</p>""",
    "language_certificate": """
<p>{{ applicant }}, geboren am {{ birth_date }}, hat die Prüfung
<strong>Deutsch B1</strong> bestanden (Hören, Lesen, Schreiben, Sprechen).</p>
<p class="sign">Prüfungszentrum (Muster)</p>""",
}

DUTIES = "fachgerechte Ausführung aller Aufgaben des Berufs nach Weisung; Dokumentation"


def _context(data: dict) -> dict:
    applicant, employer, facts = data["applicant"], data["employer"], data.get("facts", {})
    name = applicant["name"]
    given, _, surname = name.rpartition(" ")
    birth = date.fromisoformat(applicant["birth_date"])
    valid = applicant.get("passport_valid_until") or f"{date.today().year + 5}-12-31"
    months = facts.get("contract_months")
    passport_no = "M" + hashlib.sha256(name.encode()).hexdigest()[:8].upper()
    return {
        "applicant": name,
        "surname": surname.upper(),
        "given_names": given.upper() or surname.upper(),
        "mrz_1": "P<MUSTER" + "<".join(name.upper().split()),
        "birth_date": birth.strftime("%d.%m.%Y"),
        "nationality": applicant["nationality"],
        "passport_no": passport_no,
        "mrz_2": f"{passport_no}<MUSTER" + "<" * 10,
        "issued": date(int(valid[:4]) - 10, int(valid[5:7]), 1).strftime("%d.%m.%Y"),
        "valid_until": date.fromisoformat(valid).strftime("%d.%m.%Y"),
        "employer": employer["name"],
        "address": employer["address"],
        "occupation": facts.get("occupation", "Fachkraft"),
        "salary": f"{int(facts.get('gross_annual_salary_eur', 45000)):,}".replace(",", "."),
        "duration": f"Der Vertrag ist auf {months} Monate befristet"
        if months
        else "Der Vertrag wird auf unbestimmte Zeit geschlossen",
        "entry": data.get("planned_entry") or "nach Erteilung des Visums",
        "duties": DUTIES,
        "finished": str(birth.year + 22),
    }


def render_demo_document(kind: str, title: str, data: dict) -> bytes:
    """A one-page PDF of document `kind` for the case `data` (the case JSON)."""
    from weasyprint import HTML  # heavy import, only when demo data is seeded

    env = Environment(autoescape=True)
    context = _context(data)
    body = env.from_string(BODIES.get(kind, "<p>{{ applicant }}</p>")).render(context)
    html = env.from_string(PAGE).render(title=title, body=_markup(body))
    return HTML(string=html).write_pdf()


def _markup(html: str):
    from markupsafe import Markup

    return Markup(html)  # rendered above with autoescape: the case data is escaped
