"""Threads that drain the scan queue and the callback outbox inside one process.

Both are generic: what a scan does (``run_scan``), which callbacks a finished job produces
(``callbacks_for``) and how one callback is sent (``send``) are passed in, so this module knows
nothing of registries or of the broker. ``run_one`` / ``drain_once`` do one step synchronously,
which is what tests drive; ``start`` runs the same steps in daemon threads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from shared.errors import AgentError
from shared.jobs.outbox import DeliveryResult, NewCallback, Outbox, OutboxMessage
from shared.jobs.queue import Job, Outcome, ScanJob, ScanQueue
from shared.logs import log_context

log = logging.getLogger(__name__)

RunScan = Callable[[ScanJob], dict[str, Any]]
CallbacksFor = Callable[[ScanJob, Outcome], Sequence[NewCallback]]
SendCallback = Callable[[OutboxMessage], DeliveryResult]

# A job claimed this many times without finishing has crashed the process each time: stop trying.
MAX_ATTEMPTS = 3


def outcome_of(run_scan: RunScan, job: Job) -> Outcome:
    """Run one scan; every failure becomes a failed outcome, never an exception."""
    if job.attempts > MAX_ATTEMPTS:
        return Outcome.failed("ABANDONED", f"the scan was interrupted {job.attempts - 1} times; giving up")
    try:
        return Outcome.done(run_scan(job))
    except AgentError as error:
        return Outcome.failed(error.code, error.message)
    except Exception as error:  # noqa: BLE001 - a scan's bug must not kill the worker thread
        # run_scan owns scrubbing its errors; only the class is logged here, as the text may hold secrets.
        log.error("scan %s failed unexpectedly (%s)", job.id, type(error).__name__)
        return Outcome.failed("INTERNAL", "the scan failed unexpectedly; the agent's log has the details")


class _Loop:
    """A set of daemon threads repeating ``step`` and sleeping on ``wake`` when it finds nothing to do."""

    def __init__(self, name: str, wake: threading.Event, poll_seconds: float) -> None:
        self._name = name
        self._wake = wake
        self._poll = poll_seconds
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def step(self) -> bool:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()  # cleared before looking, so a signal during the step is not lost
            try:
                busy = self.step()
            except Exception:  # e.g. a locked database: log, wait, try again
                log.exception("%s: step failed", self._name)
                busy = False
            if not busy:
                self._wake.wait(self._poll)

    def start_threads(self, count: int) -> None:
        for index in range(count):
            thread = threading.Thread(target=self._run, name=f"{self._name}-{index + 1}", daemon=True)
            thread.start()
            self._threads.append(thread)

    @property
    def running(self) -> int:
        return sum(thread.is_alive() for thread in self._threads)

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._wake.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = [t for t in self._threads if t.is_alive()]


class ScanWorkers(_Loop):
    def __init__(
        self, queue: ScanQueue, run_scan: RunScan, callbacks_for: CallbacksFor, poll_seconds: float = 1.0
    ) -> None:
        super().__init__("scan-worker", queue.store.work_available, poll_seconds)
        self.queue = queue
        self.run_scan = run_scan
        self.callbacks_for = callbacks_for

    def run_one(self) -> bool:
        """Claim, run and finish one job; False when the queue is empty."""
        job = self.queue.claim()
        if job is None:
            return False
        # Every line about this job carries the id of the request that queued it.
        with log_context(job.request_id):
            self._run_job(job)
        return True

    def _run_job(self, job: Job) -> None:
        log.info(
            "scan %s (%s) started, attempt %d",
            job.id,
            job.kind,
            job.attempts,
            extra={"scan_id": job.id, "attempt": job.attempts},
        )
        outcome = outcome_of(self.run_scan, job)
        try:
            callbacks = self.callbacks_for(job, outcome)
        except AgentError as error:  # e.g. BROKER_CLIENT_URL changed since the scan was accepted
            log.warning("scan %s: no callback: %s", job.id, error.message)
            callbacks = ()
        self.queue.finish(job.id, outcome, callbacks)
        code = f" ({outcome.error['code']})" if outcome.error else ""
        log.info(
            "scan %s %s%s",
            job.id,
            outcome.status,
            code,
            extra={"scan_id": job.id, "status": outcome.status, "code": (outcome.error or {}).get("code")},
        )

    step = run_one

    def start(self, threads: int) -> None:
        recovered = self.queue.requeue_abandoned()
        if recovered:
            log.warning("requeued %d scan(s) interrupted by a restart", recovered)
        self.start_threads(threads)


class OutboxSender(_Loop):
    def __init__(self, outbox: Outbox, send: SendCallback, poll_seconds: float = 1.0) -> None:
        super().__init__("callback-sender", outbox.store.callbacks_available, poll_seconds)
        self.outbox = outbox
        self.send = send

    def drain_once(self, now: float | None = None) -> int:
        """Try every due callback once; returns how many were tried."""
        # A snapshot: a 'done' unblocked by its 'result' in this pass goes out in the next one.
        messages = self.outbox.due(now)
        for message in messages:
            with log_context(message.request_id):
                result = self.send(message)
                self.outbox.record(message, result, now)
                log.log(
                    logging.INFO if result.outcome == "delivered" else logging.WARNING,
                    "callback %s (scan %s) %s %s",
                    message.id,
                    message.scan_id,
                    result.outcome,
                    result.detail,
                    extra={"scan_id": message.scan_id, "callback_id": message.id, "outcome": result.outcome},
                )
        return len(messages)

    def step(self) -> bool:
        return self.drain_once() > 0

    def start(self) -> None:
        self.start_threads(1)  # one sender keeps each scan's callbacks in order
