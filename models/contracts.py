"""The contracts between the app and its flows: what crosses the seam.

`Decision` is the resume input: the services write it (models/services/
human_tasks.py) and the case flow waits for it (flows/case_flow.py), so both
sides read one model instead of agreeing on a dict.
"""

from pydantic import BaseModel


class Decision(BaseModel):
    """What a person (or a deadline rule) decided on a human task."""

    outcome: str
    by: str
    reason: str = ""
    task_id: int
