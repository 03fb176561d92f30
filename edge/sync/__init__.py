"""Offline sync: batches of queued till transactions, a durable job queue, workers."""
