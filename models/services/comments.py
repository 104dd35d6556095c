"""Comments on a case, written from its tasks."""

from sqlmodel import Session, select

from serviceplus.models.services import audit
from serviceplus.models.tables import Comment, HumanTask

MAX_LENGTH = 5000


class CommentError(ValueError):
    """A comment that cannot be saved; the message is German."""


def add(session: Session, *, task: HumanTask, author: str, body: str) -> Comment:
    body = (body or "").strip()
    if not body:
        raise CommentError("Bitte geben Sie einen Kommentar ein.")
    if len(body) > MAX_LENGTH:
        raise CommentError(f"Ein Kommentar darf höchstens {MAX_LENGTH} Zeichen lang sein.")
    comment = Comment(case_id=task.case_id, task_id=task.id, author=author, body=body)
    session.add(comment)
    audit.record(
        session, actor=author, action="comment_added", case_id=task.case_id, detail=task.title
    )
    return comment


def for_case(session: Session, case_id: int) -> list[Comment]:
    query = select(Comment).where(Comment.case_id == case_id).order_by(Comment.id)
    return list(session.exec(query))
