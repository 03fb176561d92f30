"""A batch's one-word status and its per-state summary."""

from __future__ import annotations

from dataclasses import replace

from edge.sync.jobs import Job, batch_status, summary

BASE = Job("j", "t", "d", "b", "txn", "sale", b"{}", "fp", "d/txn", "", "pending", 0, None, None, 0.0, 0.0, "", False, 0.0, 0.0)


def jobs(*states: str, **over: object) -> list[Job]:
    return [replace(BASE, status=s, **over) for s in states]  # type: ignore[arg-type]


def test_batch_status_words() -> None:
    assert batch_status(jobs("pending", "pending"), 10) == "pending"
    assert batch_status(jobs("pending") + [replace(BASE, owner="w", lease_until=20)], 10) == "processing"
    assert batch_status(jobs("pending") + [replace(BASE, owner="w", lease_until=5)], 10) == "pending"  # a dead lease
    assert batch_status(jobs("pending", "synced"), 10) == "processing"
    assert batch_status(jobs("retrying"), 10) == "processing"
    assert batch_status(jobs("synced", "synced"), 10) == "synced"
    assert batch_status(jobs("failed", "failed"), 10) == "failed"
    assert batch_status(jobs("synced", "failed"), 10) == "partial"


def test_summary_names_every_state() -> None:
    assert summary(jobs("synced", "synced", "failed")) == {"pending": 0, "retrying": 0, "synced": 2, "failed": 1}
