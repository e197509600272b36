"""Seed task names whose handlers live elsewhere (engage/ai, sequences).

Until the real handler is imported these fail loudly (dead-letter, replayable) rather
than pretend to work; a real `@job_handler` for the same name replaces them.
"""

from engage.handlers import JobPermanentError, job_handler

SEED_TASKS_ELSEWHERE = {"ai_engage": 100, "followup_bumpup": 95, "ai_summary": 90, "sequence_step": 70}


def _placeholder_for(task_name: str):
    def not_installed(job):
        raise JobPermanentError(f"The {task_name!r} handler is not installed in this process.")

    not_installed.__name__ = f"{task_name}_not_installed"
    return not_installed


for _name, _priority in SEED_TASKS_ELSEWHERE.items():
    job_handler(_name, priority=_priority, placeholder=True)(_placeholder_for(_name))
