"""Jobs: the queue (`queue.py`: submit, cancel, recover, health, backed by the store), the one
supervised worker thread (`worker.py`), the runner that runs one job and always ends it
(`runner.py`), and the registry of job kinds (`kinds.py`; `analyze_job.py` is the built-in
`"analyze"`)."""

from ..events import TERMINAL_EVENT_KINDS
from ..vlm.warm import WarmBackend
from .kinds import JOB_KINDS, AgentStep, JobContext, JobKind, get_job_kind, register_job_kind
from .queue import JobQueue

__all__ = ["AgentStep", "JOB_KINDS", "JobContext", "JobKind", "JobQueue", "TERMINAL_EVENT_KINDS",
           "WarmBackend", "get_job_kind", "register_job_kind"]
