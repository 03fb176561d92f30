"""The README is executed, not just read.

1. Its walk-through shell blocks (those marked `runs in CI`) run verbatim under bash
   against `pos-edge serve` on the example tenants.yaml and `pos-edge demo-erpnext`,
   and every answer is compared with the `# <status> {...}` line written under its
   command: the status, every key shown, and every value shown (`...` stands for
   "anything"). Only the ports differ from the text, so a busy 8000/8001 cannot fail it.
2. Every `pos-edge ...` command line the README shows parses with the real parser.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge.cli import build_parser
from edge.standin.server import free_port
from tests.conftest import POS_EDGE

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text()
MARK = "<!-- runs in CI"
ANY = "..."

# Every call of `curl` in the walk-through goes through this: the body is printed as
# curl would, and (status, body) is logged in call order for the comparison.
CURL_SPY = r"""
curl() {
  local out status
  out=$(command curl -w '\n%{http_code}' "$@") || return
  status=${out##*$'\n'}
  out=${out%$'\n'*}
  printf '%s\n' "$out"
  printf '%s %s\n' "$status" "$(printf '%s' "$out" | base64 -w0)" >> "$CURL_LOG"
}
set -euo pipefail
"""


def walkthrough_blocks() -> list[str]:
    """The shell blocks that follow a `runs in CI` marker, in README order."""
    return [m.group(1) for m in re.finditer(re.escape(MARK) + r"[^\n]*\n```sh\n(.*?)```", README, re.S)]


def expectations(block: str) -> list[str | None]:
    """Per curl call in the block, in order: the `# <status> {...}` text written under it (or None)."""
    out: list[str | None] = []
    current: list[str] | None = None
    for line in block.splitlines():
        if re.match(r"\s*(\w+=\$\()?curl\s", line):
            if current is not None:
                out[-1] = " ".join(current)
            out.append(None)
            current = None
        elif re.match(r"# \d{3} ", line) and out:
            current = [line[2:]]
        elif current is not None and re.match(r"#\s{2,}", line):
            current.append(line[1:].strip())
        elif current is not None:
            out[-1], current = " ".join(current), None
    if current is not None:
        out[-1] = " ".join(current)
    return out


def expected_json(text: str) -> tuple[int, Any]:
    """`201 {"a": 1, ...}` -> (201, {"a": 1}); a bare `...` element is dropped, `[...]` and `{...}`
    are any list and any object."""
    status, _, body = text.partition(" ")
    body = re.sub(r"\[\s*\.\.\.\s*\]|\{\s*\.\.\.\s*\}", '"..."', body)
    body = re.sub(r",\s*\.\.\.(?=\s*[\]}])", "", body)
    return int(status), json.loads(body)


def matches(expected: Any, actual: Any, path: str = "$") -> list[str]:
    """Where `actual` differs from what the README shows (keys shown must exist, values agree)."""
    if expected == ANY:
        return []
    if isinstance(expected, str) and ANY in expected:
        head, _, tail = expected.partition(ANY)
        ok = isinstance(actual, str) and actual.startswith(head) and actual.endswith(tail)
        return [] if ok else [f"{path}: {actual!r} is not {expected!r}"]
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: {actual!r} is not an object"]
        return [e for k, v in expected.items() for e in (
            matches(v, actual[k], f"{path}.{k}") if k in actual else [f"{path}.{k}: missing"])]
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) < len(expected):
            return [f"{path}: {actual!r} has fewer items than {expected!r}"]
        return [e for i, v in enumerate(expected) for e in matches(v, actual[i], f"{path}[{i}]")]
    return [] if expected == actual else [f"{path}: {actual!r} != {expected!r}"]


def wait_for(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"{proc.args} exited"
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError(f"{url} never answered")


def test_the_walkthrough_runs_as_written(tmp_path: Path) -> None:
    blocks = walkthrough_blocks()
    assert len(blocks) >= 4, "the walk-through lost its CI markers"
    erp_port, gw_port = free_port(), free_port()
    (tmp_path / "tenants.yaml").write_text(
        (ROOT / "tenants.yaml").read_text().replace("127.0.0.1:8001", f"127.0.0.1:{erp_port}")
        .replace("127.0.0.1:8000", f"127.0.0.1:{gw_port}"))
    (tmp_path / ".venv").symlink_to(Path(POS_EDGE).parents[1])  # `.venv/bin/pos-edge`, as in a checkout
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHOP1_", "SHOP2_", "POS_EDGE_"))}
    procs = [
        subprocess.Popen([POS_EDGE, "demo-erpnext", "--port", str(erp_port)], cwd=tmp_path, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen([POS_EDGE, "serve", "--port", str(gw_port)], cwd=tmp_path, env=env,
                         stdout=(tmp_path / "gw.log").open("wb"), stderr=subprocess.STDOUT),
    ]
    try:
        wait_for(f"http://127.0.0.1:{erp_port}/api/method/frappe.ping", procs[0])
        wait_for(f"http://127.0.0.1:{gw_port}/healthz", procs[1])
        script = CURL_SPY + "\n".join(blocks).replace("127.0.0.1:8000", f"127.0.0.1:{gw_port}").replace(
            "127.0.0.1:8001", f"127.0.0.1:{erp_port}")
        log = tmp_path / "curl.log"
        run = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                             env={**env, "CURL_LOG": str(log)})
        assert run.returncode == 0, f"the walk-through failed:\n{run.stdout}\n{run.stderr}"
        calls = [line.split(" ", 1) for line in log.read_text().splitlines()]
        wanted = [e for block in blocks for e in expectations(block)]
        assert len(calls) == len(wanted), (calls, wanted)
        shown = 0
        for (status, body), expected in zip(calls, wanted, strict=True):
            if expected is None:
                continue
            shown += 1
            want_status, want_body = expected_json(expected)
            actual = json.loads(base64.b64decode(body))
            assert int(status) == want_status, f"README says {expected}; the answer was {status} {actual}"
            assert matches(want_body, actual) == [], f"README says {expected}; the answer was {actual}"
        assert shown >= 9, "every walk-through call should show its answer"
        assert (tmp_path / "pos-edge.db").exists()  # the embedded SQLite default, next to tenants.yaml
        log = (tmp_path / "gw.log").read_text()
        assert '"tenant":"shop2"' in log and '"event":"registration_open"' in log  # shop2 has no enrollment key
        assert "demo-shop1-secret" not in log
    finally:
        for p in procs:
            p.terminate()
            p.wait(15)


def documented_command_lines() -> list[str]:
    """Every `pos-edge ...` line in the README's code blocks, without its comment."""
    lines = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", README, re.S):
        for line in block.splitlines():
            line = line.split("  #", 1)[0].strip()
            command = re.sub(r"^(\.venv/bin/)?pos-edge\s", "", line)
            if command != line and not line.startswith("pos-edge:"):
                lines.append(command)
    return lines


@pytest.mark.parametrize("line", documented_command_lines())
def test_every_documented_command_line_parses(line: str) -> None:
    try:
        args = build_parser().parse_args(shlex.split(line))
    except SystemExit as exc:  # --version and --help exit 0 once printed
        assert exc.code == 0, f"`pos-edge {line}` does not parse (exit {exc.code})"
        return
    assert callable(args.func)


def test_the_readme_documents_each_command() -> None:
    documented = {line.split()[0] for line in documented_command_lines()}
    assert {"serve", "worker", "check", "config", "devices", "sync", "erpnext", "demo-erpnext"} <= documented
