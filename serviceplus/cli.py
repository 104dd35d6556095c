"""`serviceplus`: the command line. Same database, Prefect server and
services as the web UI; settings from the environment (docs/operations.md)."""

import json
import signal
import sys
from datetime import timedelta
from pathlib import Path

import click

from serviceplus.settings import apply_prefect_env, get_settings

# Commands import what they need inside: `prefect` alone costs about a second,
# and only the commands that start or resume runs need it.


class Command(click.Group):
    """The group that prints every refusal, click's own included, as
    `error: ...` on stderr (docs/cli.md), never a capitalised `Error:`."""

    def main(self, args=None, prog_name=None, **extra):
        try:
            code = super().main(args, prog_name, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:  # a bare group: its help
            exc.show()
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            if exc.ctx is not None:
                click.echo(exc.ctx.get_usage(), err=True)
            _fail(exc.format_message(), status=exc.exit_code)
        except click.ClickException as exc:
            _fail(exc.format_message(), status=exc.exit_code)
        except click.Abort:
            _fail("aborted")
        sys.exit(code if isinstance(code, int) else 0)


@click.group(cls=Command)
def main() -> None:
    """ServicePLUS: case workflows for skilled-worker immigration (§ 81a AufenthG).

    Settings come from the environment (docs/operations.md); the data
    directory remembers its mode and secret key from `serviceplus init`."""
    try:
        apply_prefect_env()
    except ValueError as error:  # pydantic's ValidationError: a setting is missing or wrong
        message = "; ".join(e["msg"] for e in getattr(error, "errors", lambda: [])())
        _fail(f"settings: {(message or str(error)).removeprefix('Value error, ')}")


@main.command()
def init() -> None:
    """Create or upgrade the database, install the shipped definitions and,
    in demo mode, the demo organisations, users and cases."""
    from serviceplus.models.db import migrate, session_scope
    from serviceplus.models.services import accounts, versions
    from serviceplus.settings import remember_instance

    remember_instance(get_settings())
    get_settings.cache_clear()  # now with the stored secret key
    migrate()
    with session_scope() as session:
        if get_settings().demo:
            accounts.seed_demo_accounts(session)
        versions.install_shipped(session)
    click.echo("database ready")


@main.command()
@click.option("--no-web", is_flag=True, help="Start only the Prefect server and worker.")
def run(no_web: bool) -> None:
    """Start the Prefect server, the worker and the web UI; Ctrl-C stops all."""
    from serviceplus.stack import Stack, interrupt

    click.get_current_context().invoke(init)
    settings = get_settings()
    stack = Stack(settings, web=not no_web)
    # SIGTERM (systemd, a parent dying) and Ctrl-C stop the parts, also while
    # they are still starting. SIGINT explicitly: a shell without job control
    # starts `cmd &` with it ignored, and Python then leaves it ignored.
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    try:
        stack.start()
        if settings.demo:
            _seed_demo_beside(stack)
        click.echo(
            f"\nServicePLUS läuft / is running:\n"
            f"  Web UI:     http://{settings.host}:{settings.web_port}/\n"
            f"  Prefect UI: http://127.0.0.1:{settings.prefect_port}/\n"
            f"  Logs:       {stack.log_dir}\n"
        )
        if "SERVICEPLUS_SMTP_PORT" in stack.env and not settings.smtp_host:
            click.echo(
                f"  Mails:      SMTP sink 127.0.0.1:{stack.env['SERVICEPLUS_SMTP_PORT']}, "
                "read with `serviceplus mails`\n"
            )
        if settings.demo:
            click.echo(
                "  Demo logins (password 'demo'): sb.magdeburg, sb2.magdeburg, sb.halle, "
                "fosa, hwk, lvwa, zab, ba, koordination, admin\n"
            )
        click.echo("Press Ctrl-C to stop.")
        stack.wait()
    except KeyboardInterrupt:
        click.echo("\nstopping ...")
    finally:
        stack.stop()
        click.echo("stopped")


# A demo case goes from its start to the first person's inbox in a few
# seconds, more while all four start at once on two cores.
DEMO_SEED_TIMEOUT = 300.0


def _seed_demo_beside(stack) -> None:
    """`serviceplus demo seed` in a child process with the parts' environment:
    the launcher, which stays up as long as the system, need not carry
    WeasyPrint and Prefect for it."""
    import subprocess

    seeded = subprocess.run(
        [sys.executable, "-m", "serviceplus.cli", "demo", "seed"],
        env=stack.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    if seeded.returncode != 0:  # its error is on stderr already; the system still runs
        click.echo("  the demo cases could not all be created", err=True)


@main.group()
def demo() -> None:
    """Demo data (demo mode only)."""


@demo.command("seed")
@click.option(
    "--timeout", default=DEMO_SEED_TIMEOUT, show_default=True, help="Seconds to wait at most."
)
def demo_seed(timeout: float) -> None:
    """Create the demo cases (once) and wait until each is in an inbox or has
    ended; what `serviceplus run` does in demo mode before it says ready."""
    from serviceplus.demo import seed_and_wait

    if not get_settings().demo:
        _fail("demo data only in demo mode (SERVICEPLUS_DEMO=1)")
    click.echo("Demo-Fälle werden angelegt / seeding the demo cases ...", err=True)
    references, late = seed_and_wait(timeout)
    if late:
        click.echo(f"  still on their way after {timeout:g} s: {', '.join(late)}", err=True)
    click.echo(json.dumps({"cases": references, "not_in_inbox": late}))


@main.command()
@click.option(
    "--web", "web_url", help="Also check this web UI address, e.g. http://127.0.0.1:5000."
)
@click.option("--forkserver", is_flag=True, help="Also check the fork server's socket.")
def health(web_url: str | None, forkserver: bool) -> None:
    """Check the database, the Prefect API and optionally the web UI and the
    fork server; exit 1 if one fails (for systemd and monitoring)."""
    from serviceplus.health import checks

    failed = False
    for name, problem in checks(get_settings(), web_url=web_url, forkserver=forkserver):
        click.echo(f"{name}: {problem or 'ok'}")
        failed = failed or bool(problem)
    if failed:
        sys.exit(1)


@main.command()
@click.option("--limit", default=20, show_default=True, help="How many, newest first.")
@click.option("--full", is_flag=True, help="Also print each mail's text.")
def mails(limit: int, full: bool) -> None:
    """The mails the local SMTP sink of `serviceplus run` received (demo mode)."""
    from serviceplus.mailsink import read_mails

    found = read_mails(get_settings().data_dir / "mails")
    if not found:
        click.echo("no mails")
    for message in found[:limit]:
        files = [part.get_filename() for part in message.iter_attachments()]
        attached = f" [{', '.join(files)}]" if files else ""
        click.echo(f"{message['Date'] or ''}  {message['To']}  {message['Subject']}{attached}")
        if full:
            click.echo(message.get_body(("plain",)).get_content() + "\n")


@main.command()
def sweep() -> None:
    """Resume flow runs of saved decisions and start flows of saved cases
    that Prefect could not take at once."""
    from serviceplus.models.services.sweeper import sweep as run_sweep

    click.echo(json.dumps(run_sweep().__dict__))


@main.command()
@click.option(
    "--older-than",
    "period",
    help="ISO 8601 duration, e.g. P3Y or P1095D (default: SERVICEPLUS_RETENTION).",
)
@click.option("--dry-run", is_flag=True, help="Only list the cases that would be deleted.")
def retention(period: str | None, dry_run: bool) -> None:
    """Delete the personal data of cases closed longer ago than the retention period."""
    from pydantic import TypeAdapter, ValidationError

    from serviceplus.models.db import session_scope
    from serviceplus.models.services import retention as service

    try:
        older_than = TypeAdapter(timedelta).validate_python(period or get_settings().retention)
    except ValidationError:
        _fail(f"--older-than: not an ISO 8601 duration: {period}")
    with session_scope() as session:
        report = service.purge(session, older_than=older_than, dry_run=dry_run, actor="retention")
    click.echo(
        json.dumps(
            {"dry_run": dry_run, "cases": report.cases, "files_removed": report.files_removed}
        )
    )


@main.command("backup")
@click.argument("archive", type=click.Path(dir_okay=False, path_type=Path))
def backup_command(archive: Path) -> None:
    """Write a backup of the databases, documents, letters and Prefect results
    (embedded default) to ARCHIVE (.tar.gz); the system may keep running."""
    from serviceplus.backup import BackupError, backup

    try:
        members = backup(get_settings(), archive)
    except BackupError as exc:
        _fail(str(exc))
    click.echo(json.dumps({"archive": str(archive), "members": members}))


@main.command("restore")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def restore_command(archive: Path) -> None:
    """Restore ARCHIVE into the (new, empty) data directory SERVICEPLUS_DATA_DIR.
    Start the system afterwards; suspended cases continue where they were."""
    from serviceplus.backup import BackupError, restore

    try:
        members = restore(get_settings(), archive)
    except BackupError as exc:
        _fail(str(exc))
    click.echo(json.dumps({"data_dir": str(get_settings().data_dir), "restored": members}))


@main.group()
def case() -> None:
    """Start and inspect cases."""


@case.command("start")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--documents",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder with the files named in the case file (default: the file's folder).",
)
@click.option("--as", "username", default="system", help="Recorded as the case's creator.")
def case_start(file: Path, documents: Path | None, username: str) -> None:
    """Create a case from FILE (JSON, see docs/cli.md) and start its flow.

    Submitting the same file again returns the existing case."""
    from serviceplus.models.services import cases

    folder = documents or file.parent
    raw = _load_json(file)
    try:
        data = cases.parse_case_input(raw)
        files = [_read_document(folder, ref) for ref in data.documents]
        case, created, started = cases.submit(
            data=data,
            documents=files,
            actor=username,
            max_upload_bytes=get_settings().max_upload_bytes,
        )
    except cases.CaseInputError as exc:
        _fail("; ".join(exc.english))  # one line, however many problems
    click.echo(
        json.dumps({"reference": case.reference, "created": created, "flow_started": started})
    )


def _load_json(file: Path) -> object:
    """The case file's JSON, or one line saying why not (never a traceback)."""
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except RecursionError:  # e.g. 100,000 nested brackets
        _fail(f"{file}: not valid JSON: nested too deeply")
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, over-long numbers
        _fail(f"{file}: not valid JSON: {exc}")
    except OSError as exc:
        _fail(f"{file}: cannot read: {exc.strerror}")


def _read_document(folder: Path, ref):
    """The file under the name the case file gives, relative to its folder and
    never outside it; add_document stores it under the safe name."""
    from serviceplus.models.services.cases import CaseInputError, NewDocument, Problem

    root = folder.resolve()
    path = (root / ref.file).resolve()
    if not path.is_relative_to(root):
        raise CaseInputError(
            [
                Problem(
                    f"Unterlagen › {ref.file}: liegt außerhalb des Ordners der Falldatei",
                    f"documents: {ref.file} is outside the case file's folder",
                )
            ]
        )
    if not path.is_file():
        raise CaseInputError(
            [Problem(f"Unterlagen › {ref.file}: nicht gefunden", f"documents: {path} not found")]
        )
    return NewDocument(kind=ref.kind, filename=ref.file, data=path.read_bytes())


@case.command("add-document")
@click.argument("reference")
@click.argument("kind")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--as",
    "username",
    default="system",
    help="Recorded as the uploader: an active clerk of the case's authority, or system.",
)
def case_add_document(reference: str, kind: str, file: Path, username: str) -> None:
    """Add FILE as a document of KIND (e.g. passport) to the case REFERENCE,
    with the checks of the web upload (PDF, JPEG or PNG, size, known kind)."""
    from serviceplus.models.db import session_scope
    from serviceplus.models.services import accounts, cases
    from serviceplus.models.tables import Role

    doc = cases.NewDocument(kind=kind, filename=file.name, data=file.read_bytes())
    try:
        with session_scope() as session:
            found = cases.get_by_reference(session, reference)
            if found is None:
                _fail(f"no case {reference}")
            if username != "system":  # the web upload's check: a clerk of the case's authority
                user = accounts.get_user(session, username)
                if user is None or not user.active or user.role != Role.clerk:
                    _fail(f"no active clerk {username}")
                if user.organisation_id != found.organisation_id:
                    _fail(f"{username} is not a clerk of the authority of case {reference}")
            row = cases.upload_document(
                session,
                case=found,
                doc=doc,
                actor=username,
                max_upload_bytes=get_settings().max_upload_bytes,
            )
            result = {
                "reference": reference,
                "kind": row.kind,
                "file": row.original_name,
                "media_type": row.media_type,
                "size": row.size,
                "sha256": row.sha256,
            }
    except cases.CaseInputError as exc:
        _fail("; ".join(exc.english))
    click.echo(json.dumps(result, ensure_ascii=False))


@case.command("handover")
@click.argument("reference")
@click.option("--to", "to", required=True, help="The competent authority (slug, e.g. abh-hal).")
@click.option("--reason", required=True, help="Why the case goes there (recorded).")
@click.option("--as", "username", required=True, help="A clerk of the case's authority.")
def case_handover(reference: str, to: str, reason: str, username: str) -> None:
    """Hand case REFERENCE over to another foreigners' authority, with its
    documents, letters, history, open tasks and family members."""
    from serviceplus.models.db import session_scope
    from serviceplus.models.services import accounts, cases, transfers
    from serviceplus.models.tables import Organisation

    try:
        with session_scope() as session:
            found = cases.get_by_reference(session, reference)
            user = accounts.get_user(session, username)
            if found is None or user is None or not user.active:
                _fail(f"no case {reference} or no active user {username}")
            source = session.get(Organisation, found.organisation_id).slug
            moved = transfers.hand_over(session, case=found, user=user, to=to, reason=reason)
            result = {"handed_over": [c.reference for c in moved], "to": to}
    except transfers.TransferError as exc:
        _fail(str(exc))
    transfers.retag_runs(moved, source, to)  # after the commit
    click.echo(json.dumps(result))


@case.command("show")
@click.argument("reference")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the only format so far).")
def case_show(reference: str, as_json: bool) -> None:
    """Show one case with its tasks, documents and letters."""
    from serviceplus import export
    from serviceplus.models.db import session_scope
    from serviceplus.models.services import cases

    with session_scope() as session:
        found = cases.get_by_reference(session, reference)
        if found is None:
            _fail(f"no case {reference}")
        click.echo(json.dumps(export.case_detail(session, found), indent=2, ensure_ascii=False))


@main.command("cases")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the only format so far).")
def cases_list(as_json: bool) -> None:
    """List all cases, newest first."""
    from serviceplus import export
    from serviceplus.models.db import session_scope

    with session_scope() as session:
        click.echo(json.dumps(export.all_cases(session), indent=2, ensure_ascii=False))


@main.command("tasks")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the only format so far).")
@click.option("--org", help="Only tasks addressed to this organisation (slug, e.g. abh-md).")
@click.option("--all", "include_done", is_flag=True, help="Include completed tasks.")
def tasks_list(as_json: bool, org: str | None, include_done: bool) -> None:
    """List open and claimed tasks, by due date."""
    from serviceplus import export
    from serviceplus.models.db import session_scope

    with session_scope() as session:
        rows = export.tasks(session, org_slug=org, include_done=include_done)
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))


@main.group()
def task() -> None:
    """Work on human tasks."""


@task.command("complete")
@click.argument("task_id", type=int)
@click.option("--decision", required=True, help="One of the task's options, e.g. approve.")
@click.option("--reason", default="", help="Required for some decisions (e.g. reject).")
@click.option("--as", "username", required=True, help="The user who decides.")
@click.option(
    "--value",
    "values",
    multiple=True,
    metavar="NAME=VALUE",
    help="A field of the step's form, e.g. fee_paid_eur=411,00 (repeatable).",
)
@click.option(
    "--file",
    "files",
    multiple=True,
    metavar="NAME=PATH",
    help="A document field of the step's form, e.g. signed_agreement=v.pdf (repeatable).",
)
def task_complete(
    task_id: int, decision: str, reason: str, username: str, values: tuple, files: tuple
) -> None:
    """Complete TASK_ID with a decision and resume the case's flow."""
    from serviceplus.models.services import cases, human_tasks

    entered = dict(v.partition("=")[::2] for v in values)
    documents = {}
    for item in files:
        name, _, path = item.partition("=")
        try:
            data = Path(path).read_bytes()
        except OSError:
            _fail(f"Datei nicht lesbar: {path}")
        documents[name] = cases.NewDocument(name, Path(path).name, data)
    try:
        resumed = human_tasks.decide_and_resume(
            task_id=task_id,
            username=username,
            decision=decision,
            reason=reason,
            values=entered,
            files=documents,
        )
    except human_tasks.TaskError as exc:
        _fail(str(exc))
    click.echo(json.dumps({"task_id": task_id, "decision": decision, "resumed": resumed}))


@main.group()
def precheck() -> None:
    """Advisers' pre-checks: create one, hand it over to the authority."""


def _adviser(session, username: str):
    from serviceplus.models.services import accounts
    from serviceplus.models.tables import Role

    user = accounts.get_user(session, username)
    if user is None or not user.active or user.role != Role.adviser:
        _fail(f"{username}: not an active adviser")
    return user


@precheck.command("create")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--documents",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder with the files named in the case file (default: the file's folder).",
)
@click.option("--note", default="", help="The adviser's note for the authority.")
@click.option("--as", "username", required=True, help="The adviser (role adviser).")
def precheck_create(file: Path, documents: Path | None, note: str, username: str) -> None:
    """Pre-check FILE (the same JSON as `case start`) for the adviser's organisation."""
    from serviceplus.models.db import session_scope
    from serviceplus.models.services import advice, cases

    raw = _load_json(file)
    try:
        data = cases.parse_case_input(raw)
        files = [_read_document(documents or file.parent, ref) for ref in data.documents]
        with session_scope() as session:
            row = advice.create(
                session,
                data=data,
                documents=files,
                adviser=_adviser(session, username),
                note=note,
                max_upload_bytes=get_settings().max_upload_bytes,
            )
            found = advice.check(session, row).result
            result = {
                "precheck": row.id,
                "complete": found.complete,
                "missing": found.missing,
                "unreadable": found.unreadable,
                "problems": found.problems,
            }
    except cases.CaseInputError as exc:
        _fail("; ".join(exc.english))
    click.echo(json.dumps(result, ensure_ascii=False))


@precheck.command("handover")
@click.argument("precheck_id", type=int)
@click.option("--as", "username", required=True, help="The adviser (role adviser).")
def precheck_handover(precheck_id: int, username: str) -> None:
    """Open the case at the competent authority from a complete pre-check."""
    from serviceplus.models.db import session_scope
    from serviceplus.models.services import advice

    with session_scope() as session:
        user = _adviser(session, username)
    try:
        case, started = advice.handover(
            precheck_id=precheck_id, user=user, max_upload_bytes=get_settings().max_upload_bytes
        )
    except advice.PrecheckError as exc:
        _fail(str(exc))
    click.echo(json.dumps({"reference": case.reference, "flow_started": started}))


def _fail(message: str, status: int = 1) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(status)


if __name__ == "__main__":  # `python -m serviceplus.cli`, as `serviceplus run` seeds the demo
    main()
