"""The job ledger: every piece of background work as a row (`Job`), run by Celery, retried, replayable.

- `models`: `Job`, the ledger and transactional outbox.
- `registry`: `@job_handler("task_name", priority=...)` registers a handler; `JobPermanentError`.
- `services`: `job_enqueue` (in the caller's transaction; Celery gets it on commit), claim, execute,
  retry with backoff, `job_replay`, `job_cancel`, `dlq_replay`, `jobs_relay` (beat).
- `selectors`: `queue_stats`. `tasks`: the one Celery task that runs a job, and the relay.
- `apis`: `GET /queue/stats`, `POST /admin/dlq/replay`.
See docs/jobs.md.
"""
