"""Noticing a changed tenants.yaml: watch its directory, and SIGHUP.

The directory is watched rather than the file, so that replacing the file
(an editor's write-and-rename, or Kubernetes swapping a ConfigMap's `..data`
symlink) is seen too. Events only prompt a look: the app reloads when the
file's bytes changed, or always on SIGHUP.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import watchfiles

Reload = Callable[[str, bool], Awaitable[bool]]


class ConfigWatcher:
    """Calls `reload(reason, force)` when the config file may have changed."""

    def __init__(self, path: str, reload: Reload, log: Any) -> None:
        self.path = Path(path).absolute()
        self._reload = reload
        self.log = log
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def _relevant(self, _change: watchfiles.Change, changed: str) -> bool:
        # the file itself, or Kubernetes' `..data` / `..<timestamp>` entries beside it
        name = Path(changed).name
        return name == self.path.name or name.startswith("..")

    async def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                async for _ in watchfiles.awatch(self.path.parent, watch_filter=self._relevant, recursive=False,
                                                 debounce=200, step=50, stop_event=self._stop):
                    await self._reload("file changed", False)
            except Exception as exc:  # a vanished directory, say: keep serving, try again
                self.log.warning("config_watch_failed", config=str(self.path), error=f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(5)

    def start(self) -> None:
        """Watch in the background, and reload on SIGHUP."""
        self._task = asyncio.create_task(self._watch())
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self._reload("SIGHUP", True)))
        except (NotImplementedError, RuntimeError):  # not the main thread (tests), or no SIGHUP
            pass

    async def stop(self) -> None:
        """Stop watching."""
        self._stop.set()
        if self._task is not None:
            await asyncio.wait({self._task}, timeout=2)
            self._task.cancel()
