"""meta.json: what researchers say about a run, its tags and a free-text note.

Kept apart from status.json so that annotating a run never races with its lifecycle (a trainer
or scheduler rewriting the state); changed under the folder lock and written atomically by
`RunDir.update_meta`. Tags are short labels without commas or line breaks, kept in the order
added, each once.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.runs.records import _fail, _mapping, _typed

TAG_MAX = 40
NOTE_MAX = 10_000


def check_tag(tag: str) -> str:
    """The tag stripped; ConfigError naming it when it is empty, too long or holds a comma or line break."""
    text = tag.strip()
    if not text or len(text) > TAG_MAX or any(c in text for c in ",\n\r\t"):
        raise ConfigError(f"tag {tag!r} is not valid: 1 to {TAG_MAX} characters, no commas, tabs or line breaks")
    return text


def check_note(note: str) -> str:
    if len(note) > NOTE_MAX:
        raise ConfigError(f"the note has {len(note)} characters; at most {NOTE_MAX} are kept")
    return note


@dataclass
class RunMeta:
    """meta.json: the run's tags and note (see the module docstring)."""

    tags: list[str] = field(default_factory=list)
    note: str = ""

    @classmethod
    def from_json(cls, data: Any, path: Path | str) -> "RunMeta":
        data = _mapping(data, path, "run meta")
        tags = _typed(data.get("tags", []), list, path, "tags")
        note = _typed(data.get("note", ""), str, path, "note")
        try:
            return cls([check_tag(t) for t in tags], check_note(note))
        except ConfigError as exc:
            raise _fail(path, str(exc)) from None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def changed(self, add: list[str] = (), remove: list[str] = (), note: str | None = None) -> "RunMeta":
        """A copy with tags added (each once, in order), tags removed, and the note replaced when given."""
        gone = {check_tag(t) for t in remove}
        tags = [t for t in dict.fromkeys([*self.tags, *(check_tag(t) for t in add)]) if t not in gone]
        return RunMeta(tags, self.note if note is None else check_note(note))
