"""Durable scan dispatch: the SQLite queue and callback outbox, their worker threads, and Pub/Sub."""

from shared.jobs.backoff import Backoff
from shared.jobs.dispatch import (
    Dispatcher,
    DispatchFailed,
    LocalDispatcher,
    NewJob,
    ScanNotFound,
    StatusUnavailable,
    dispatcher_for,
)
from shared.jobs.outbox import DeliveryResult, NewCallback, Outbox, OutboxMessage
from shared.jobs.queue import Job, JobKind, Outcome, QueueFull, ScanJob, ScanQueue
from shared.jobs.store import JobStore, open_store
from shared.jobs.workers import OutboxSender, ScanWorkers, outcome_of

__all__ = [
    "Backoff",
    "DeliveryResult",
    "DispatchFailed",
    "Dispatcher",
    "Job",
    "JobKind",
    "JobStore",
    "LocalDispatcher",
    "NewCallback",
    "NewJob",
    "Outbox",
    "OutboxMessage",
    "OutboxSender",
    "Outcome",
    "QueueFull",
    "ScanJob",
    "ScanNotFound",
    "ScanQueue",
    "ScanWorkers",
    "StatusUnavailable",
    "dispatcher_for",
    "open_store",
    "outcome_of",
]
