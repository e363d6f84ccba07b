"""Jobs: the queue (`queue.py`: submit, cancel, recover, health, backed by the store), the one
supervised worker thread (`worker.py`), the runner that runs one job and always ends it
(`runner.py`), the registry of job kinds (`kinds.py`; `analyze_job.py` is the built-in
`"analyze"`), and the registry of queue kinds (`queues.py`: `sqlite`, the embedded queue, or
`redis`, `redis_queue.py`: jobs handed to remote `chronicon worker` processes)."""

from ..events import TERMINAL_EVENT_KINDS
from ..vlm.warm import WarmBackend
from .kinds import JOB_KINDS, AgentStep, JobContext, JobKind, get_job_kind, register_job_kind
from .queue import JobQueue
from .queues import QUEUE_KINDS, create_queue

__all__ = ["AgentStep", "JOB_KINDS", "JobContext", "JobKind", "JobQueue", "QUEUE_KINDS",
           "TERMINAL_EVENT_KINDS", "WarmBackend", "create_queue", "get_job_kind",
           "register_job_kind"]
