"""Run folders and their typed records: `RunDir` (core.runs.folder) and the schemas of what it
holds (core.runs.records). Nothing else reads or writes a run folder's files."""

from core.runs.folder import RunDir, list_run_dirs, now, write_atomic
from core.runs.meta import RunMeta
from core.runs.records import (
    ACTIVE_STATES,
    FINAL_STATES,
    STATES,
    CheckpointMeta,
    CrossResult,
    Embeddings,
    EvalRecord,
    Metrics,
    RecordError,
    Result,
    Status,
    no_embeddings,
)

__all__ = [
    "ACTIVE_STATES", "FINAL_STATES", "STATES", "CheckpointMeta", "CrossResult", "Embeddings", "EvalRecord",
    "Metrics", "RecordError", "Result", "RunDir", "RunMeta", "Status", "list_run_dirs", "no_embeddings", "now", "write_atomic",
]
