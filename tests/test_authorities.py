"""The competent authority: the 14 districts of Sachsen-Anhalt from the data
file, routing by the employer's postcode (one match, none, several) for the
web form, the CLI and the adviser's hand-over."""

import copy
import json
import uuid

import pytest
from click.testing import CliRunner
from sqlmodel import select

from serviceplus.cli import main
from serviceplus.demo import blank_pdf
from serviceplus.models.db import session_scope
from serviceplus.models.services import accounts, advice, authorities, cases
from serviceplus.models.tables import Case, Organisation
from tests.helpers import EXAMPLE

MAX = 10 * 1024 * 1024
# 06543 spans Harz (Falkenstein/Harz) and Mansfeld-Südharz (Arnstein).
SHARED = "06543"


def case_data(address: str, organisation: str | None = None, **changes) -> dict:
    data = copy.deepcopy(EXAMPLE)
    data["employer"]["address"] = address
    data["organisation"] = organisation
    data["submission_key"] = f"routing-{uuid.uuid4()}"
    data.pop("documents")
    return data | changes


def create(data: dict) -> Case:
    with session_scope() as session:
        case, _ = cases.create_case(
            session=session,
            data=cases.parse_case_input(data),
            documents=[],
            actor="test",
            max_upload_bytes=MAX,
        )
        return case


def slug_of(case: Case) -> str:
    with session_scope() as session:
        return session.get(Organisation, case.organisation_id).slug


def test_the_data_file_lists_the_14_districts_with_their_postcodes():
    rows = authorities.districts()
    assert len(rows) == 14 and len({d.slug for d in rows}) == 14
    assert sum(d.district_kind == "kreisfreie Stadt" for d in rows) == 3
    assert {d.district for d in rows} >= {"Dessau-Roßlau", "Halle (Saale)", "Magdeburg", "Harz"}
    assert all(len(p) == 5 and p.isdigit() for d in rows for p in d.postcodes)
    assert [d.slug for d in authorities.districts_for("39104")] == ["abh-md"]
    assert [d.slug for d in authorities.districts_for(SHARED)] == ["abh-hz", "abh-msh"]


def test_postcode_is_read_from_the_address():
    assert authorities.postcode_of("Hegelstraße 7, 39104 Magdeburg") == "39104"
    assert authorities.postcode_of("Straße des 17. Juni 123456") is None
    assert authorities.postcode_of("Musterweg 1") is None


def test_demo_lists_all_authorities_but_only_two_take_part(database):
    with session_scope() as session:
        rows = session.exec(select(Organisation).where(Organisation.kind == "abh")).all()
    districts = {d.slug for d in authorities.districts()}
    assert districts <= {o.slug for o in rows}
    # Other tests add authorities of their own; of the 14 districts two take part.
    assert {o.slug for o in rows if o.active and o.slug in districts} == {"abh-md", "abh-hal"}


def test_one_match_routes_the_case_there(database):
    case = create(case_data("Mansfelder Straße 56, 06108 Halle (Saale)"))
    assert slug_of(case) == "abh-hal"
    assert case.reference.startswith("ABH-HAL-")


def test_postcode_outside_sachsen_anhalt_is_refused_in_german(database):
    with pytest.raises(cases.CaseInputError) as refused:
        create(case_data("Unter den Linden 1, 10117 Berlin"))
    assert "10117 des Arbeitsorts liegt außerhalb von Sachsen-Anhalt" in refused.value.messages[0]


def test_shared_postcode_asks_for_a_choice_among_the_candidates(database):
    with pytest.raises(cases.AuthorityChoiceNeeded) as several:
        create(case_data(f"Hauptstraße 1, {SHARED} Arnstein"))
    assert several.value.candidates == [
        ("abh-hz", "Ausländerbehörde Landkreis Harz"),
        ("abh-msh", "Ausländerbehörde Landkreis Mansfeld-Südharz"),
    ]
    assert "gehört zu mehreren Kreisen" in several.value.messages[0]
    # Picked: the authority is competent but does not take part (demo): said so.
    with pytest.raises(cases.CaseInputError) as inactive:
        create(case_data(f"Hauptstraße 1, {SHARED} Arnstein", organisation="abh-msh"))
    assert "nimmt noch nicht an ServicePLUS teil" in inactive.value.messages[0]
    # An authority that is not among the candidates is refused.
    with pytest.raises(cases.CaseInputError) as wrong:
        create(case_data(f"Hauptstraße 1, {SHARED} Arnstein", organisation="abh-md"))
    assert "nicht „abh-md“" in wrong.value.messages[0]


def test_shared_postcode_with_a_taking_part_candidate_is_opened_there(database):
    # 39264 spans Anhalt-Bitterfeld and Jerichower Land; let one take part.
    with session_scope() as session:
        accounts.get_organisation(session, "abh-jl").active = True
    try:
        case = create(case_data("Dorfstraße 2, 39264 Dornburg", organisation="abh-jl"))
        assert slug_of(case) == "abh-jl"
    finally:
        with session_scope() as session:
            accounts.get_organisation(session, "abh-jl").active = False


def test_authority_that_does_not_take_part_is_named(database):
    with pytest.raises(cases.CaseInputError) as refused:
        create(case_data("Friedrich-Ebert-Straße 42, 38820 Halberstadt"))
    assert refused.value.messages == [
        "Zuständig ist die Ausländerbehörde Landkreis Harz (Landkreis Harz · "
        "Ausländerbehörde · 38820 Halberstadt); sie nimmt noch nicht an ServicePLUS "
        "teil. Der Antrag ist dort direkt zu stellen."
    ]


def test_web_form_routes_and_offers_the_candidates(login):
    client = login("sb.magdeburg")
    form = {
        "residence_purpose": "18a",
        "applicant_name": "Routing Test",
        "applicant_birth_date": "1991-02-03",
        "applicant_nationality": "indisch",
        "employer_name": "Saale Chemie GmbH",
        "employer_address": "Mansfelder Straße 56, 06108 Halle (Saale)",
        "submission_key": f"web-{uuid.uuid4()}",
    }
    routed = client.post("/cases/new", data=form)
    assert routed.status_code == 302 and routed.headers["Location"].endswith("/cases/")
    page = client.get("/cases/").get_data(as_text=True)
    assert "bei der zuständigen Ausländerbehörde Halle (Saale) angelegt" in page
    with session_scope() as session:
        case = session.exec(select(Case).where(Case.submission_key == form["submission_key"])).one()
        assert session.get(Organisation, case.organisation_id).slug == "abh-hal"
    several = client.post(
        "/cases/new",
        data=form
        | {
            "employer_address": f"Am Markt 1, {SHARED} Falkenstein/Harz",
            "submission_key": f"web-{uuid.uuid4()}",
        },
    )
    text = several.get_data(as_text=True)
    assert several.status_code == 400 and "gehört zu mehreren Kreisen" in text
    assert '<option value="abh-hz">Ausländerbehörde Landkreis Harz</option>' in text
    assert '<option value="abh-md">' not in text  # only the candidates are offered


def run_case_start(tmp_path, data: dict):
    path = tmp_path / "case.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return CliRunner().invoke(main, ["case", "start", str(path)])


def test_cli_case_start_is_routed(tmp_path, inprocess_deployment):
    data = case_data("Mansfelder Straße 56, 06108 Halle (Saale)")
    data.pop("organisation")
    started = run_case_start(tmp_path, data)
    assert started.exit_code == 0, started.output
    assert json.loads(started.output)["reference"].startswith("ABH-HAL-")
    outside = run_case_start(tmp_path, case_data("Marienplatz 1, 80331 München"))
    assert outside.exit_code == 1
    assert "postcode 80331 is outside Sachsen-Anhalt" in outside.output
    several = run_case_start(tmp_path, case_data(f"Hauptstraße 1, {SHARED} Arnstein"))
    assert several.exit_code == 1 and "spans several districts (abh-hz, abh-msh)" in several.output


def test_adviser_handover_is_routed_to_the_place_of_employment(inprocess_deployment):
    data = case_data("Mansfelder Straße 56, 06108 Halle (Saale)")
    data.pop("submission_key")
    kinds = [d["kind"] for d in EXAMPLE["documents"]]
    docs = [cases.NewDocument(k, f"{k}.pdf", blank_pdf()) for k in kinds]
    with session_scope() as session:
        adviser = accounts.get_user(session, "berater.wcst")
        row = advice.create(
            session,
            data=cases.parse_case_input(data),
            documents=docs,
            adviser=adviser,
            max_upload_bytes=MAX,
        )
        assert session.get(Organisation, row.authority_id).slug == "abh-hal"
    case, started = advice.handover(precheck_id=row.id, user=adviser, max_upload_bytes=MAX)
    assert started and slug_of(case) == "abh-hal"
    with pytest.raises(cases.CaseInputError) as outside, session_scope() as session:
        advice.create(
            session,
            data=cases.parse_case_input(case_data("Marienplatz 1, 80331 München")),
            documents=[],
            adviser=accounts.get_user(session, "berater.wcst"),
            max_upload_bytes=MAX,
        )
    assert "außerhalb von Sachsen-Anhalt" in outside.value.messages[0]


def test_nobody_logs_in_at_an_authority_that_does_not_take_part(database):
    from serviceplus.models.tables import Role, User

    with session_scope() as session:
        harz = accounts.get_organisation(session, "abh-hz")
        session.add(
            User(
                username=f"hz-{uuid.uuid4().hex[:6]}",
                full_name="Harz",
                password_hash=accounts.hash_password("demo"),
                role=Role.clerk,
                organisation_id=harz.id,
            )
        )
        session.flush()
        name = session.exec(select(User).where(User.organisation_id == harz.id)).first().username
        assert accounts.authenticate(session, username=name, password="demo") is None
        assert accounts.authenticate(session, username="sb.halle", password="demo") is not None
