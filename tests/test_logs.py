"""Log lines: JSON, buffered, tracebacks kept, never torn; one format for pos-edge's,
uvicorn's and the libraries' lines; probes below info."""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import pytest
import structlog

from edge import logs
from tests.conftest import base_config, start_gateway


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


def test_stdlib_records_are_rendered_like_ours_with_tracebacks_and_no_locals() -> None:
    import logging

    out = io.BytesIO()
    logs.configure(json_lines=True, stream=out, flush_interval=60)
    structlog.get_logger("t").info("ours", n=1)

    def callback(api_secret: str) -> None:
        raise OSError("connection reset")

    try:
        callback("SECRET-api-secret")
    except OSError:
        logging.getLogger("asyncio").exception("Exception in callback %s", "cb")
    logging.getLogger("aiohttp.client").debug("below the level: never written")
    logs.flush()
    ours, theirs = (json.loads(x) for x in out.getvalue().splitlines())
    assert {"event", "level", "timestamp", "logger"} <= set(ours) and ours["logger"] == "pos_edge"
    assert set(ours) - {"n"} <= set(theirs)
    assert theirs["event"] == "Exception in callback cb" and theirs["level"] == "error"
    assert theirs["logger"] == "asyncio" and theirs["timestamp"].endswith("Z")
    assert theirs["exception"][0]["exc_type"] == "OSError" and theirs["exception"][0]["frames"]
    assert "SECRET" not in out.getvalue().decode()


# The keys every line carries, whoever wrote it (pos-edge, uvicorn, a library).
COMMON_KEYS = {"event", "level", "timestamp", "logger"}


@pytest.mark.parametrize("workers", [1, 2])
def test_every_line_serve_prints_is_json_with_the_common_keys(tmp_path: Path, standin_server, workers: int) -> None:
    gw = start_gateway(tmp_path, base_config(tmp_path, standin_server.url), args=["--workers", str(workers)])
    try:
        for _ in range(3):
            assert gw.http.get("/healthz").status_code == 200
            assert gw.http.get("/readyz").status_code == 200
        httpx.get(f"http://{gw.metrics_listen()}/metrics", timeout=10).raise_for_status()
        rid = gw.http.get("/nope").headers["x-request-id"]
        gw.wait_log(rid)
    finally:
        gw.stop()
    assert gw.proc.returncode == 0
    lines = [json.loads(text) for text in gw.log_lines()]  # every line is JSON: a text line fails here
    for line in lines:
        assert COMMON_KEYS <= set(line), line
    uvicorn = [line["event"] for line in lines if line["logger"] == "uvicorn.error"]
    assert any(e.startswith("Uvicorn running on http://127.0.0.1:") for e in uvicorn), uvicorn
    assert uvicorn.count("Application startup complete.") == workers
    assert uvicorn.count("Application shutdown complete.") == workers
    if workers > 1:
        assert any(e.startswith("Started parent process") for e in uvicorn)
    access = [line for line in lines if line["event"] == "request"]
    assert [a["path"] for a in access if a["request_id"] == rid] == ["/nope"]
    # probes and scrapes are below info: not written at the default level
    assert not [a for a in access if a["path"] in ("/healthz", "/readyz", "/metrics")]
    assert {line["event"] for line in lines if line["logger"] == "pos_edge"} >= {"started", "stopped"}


def test_quiet_paths_are_configurable_and_logged_at_debug(tmp_path: Path, standin_server) -> None:
    cfg = base_config(tmp_path, standin_server.url, logging={"quiet_paths": ["/readyz"]})
    gw = start_gateway(tmp_path, cfg)
    try:
        quiet = gw.http.get("/readyz").headers["x-request-id"]
        rid = gw.http.get("/healthz").headers["x-request-id"]
        lines = [json.loads(text) for text in gw.wait_log(rid)]
    finally:
        gw.stop()
    access = [line for line in lines if line.get("request_id") in (quiet, rid)]
    assert [(a["path"], a["level"]) for a in access] == [("/healthz", "info")]

    debug = tmp_path / "debug"
    debug.mkdir()
    gw = start_gateway(debug, base_config(debug, standin_server.url), args=["--log-level", "debug"])
    try:
        rid = gw.http.get("/healthz").headers["x-request-id"]
        lines = [json.loads(text) for text in gw.wait_log(rid)]
    finally:
        gw.stop()
    (probe,) = [line for line in lines if line.get("request_id") == rid]
    assert probe["path"] == "/healthz" and probe["level"] == "debug"
