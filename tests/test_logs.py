"""Log lines: JSON, buffered, tracebacks kept, never torn."""

from __future__ import annotations

import io
import json

import structlog

from edge import logs


def test_exceptions_keep_their_traceback_and_urgent_lines_are_written_at_once() -> None:
    out = io.BytesIO()
    logs.configure(json_lines=True, stream=out, flush_interval=60)
    log = structlog.get_logger("t")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("unhandled_error", request_id="r1")
    line = json.loads(out.getvalue().splitlines()[-1])
    assert line["event"] == "unhandled_error" and line["level"] == "error"
    assert line["exception"][0]["exc_type"] == "ValueError"
    assert line["timestamp"].endswith("Z")


def test_batches_are_written_in_pipe_atomic_chunks_of_whole_lines() -> None:
    writes: list[bytes] = []

    class Recorder(io.RawIOBase):
        def write(self, b):  # type: ignore[override]
            writes.append(bytes(b))
            return len(b)

    writer = logs.BufferedLines(Recorder(), flush_interval=60)
    for i in range(200):
        writer.info(json.dumps({"n": i, "pad": "x" * 60}).encode())
    writer.flush()
    assert len(writes) > 1 and all(len(w) <= 4096 and w.endswith(b"\n") for w in writes)
    lines = b"".join(writes).splitlines()
    assert [json.loads(x)["n"] for x in lines] == list(range(200))


def test_tracebacks_never_show_local_variables() -> None:
    out = io.BytesIO()
    logs.configure(json_lines=True, stream=out, flush_interval=60)
    log = structlog.get_logger("t")

    def register(enrollment_key: str, authorization: bytes) -> None:
        raise RuntimeError("cut")

    try:
        register("enrol-SECRET-1234", b"Bearer eyJSECRETTOKEN")
    except RuntimeError:
        log.exception("unhandled_error")
    text = out.getvalue().decode()
    line = json.loads(text.splitlines()[-1])
    assert line["exception"][0]["frames"], "the frames are still there"
    assert "SECRET" not in text and "locals" not in text


def test_console_tracebacks_never_show_local_variables(capsys) -> None:
    logs.configure(json_lines=False)
    secret = "enrol-SECRET-5678"  # noqa: F841 (a local the traceback must not print)
    try:
        raise RuntimeError("cut")
    except RuntimeError:
        structlog.get_logger("t").exception("unhandled_error")
    assert "SECRET" not in capsys.readouterr().out
