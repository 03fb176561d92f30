"""Hot reload of tenants.yaml: LiveConfig swaps the serving configuration, and
ConfigWatcher notices a changed file (its directory is watched) or SIGHUP.

The directory is watched rather than the file, so that replacing the file
(an editor's write-and-rename, or Kubernetes swapping a ConfigMap's `..data`
symlink) is seen too. Events only prompt a look: the configuration is reloaded
when the file's bytes changed, or always on SIGHUP.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import watchfiles

from edge import config as config_mod
from edge.config import LoadedConfig
from edge.runtime import Runtime, build_runtime

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
                                                 debounce=200, step=500, stop_event=self._stop):
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


class LiveConfig:
    """The configuration a process serves now, and replacing it in one step.

    Readers take `runtime` once per request (or per sync job) and use that
    snapshot throughout, so each sees the old configuration or the new one,
    never a mix.
    """

    def __init__(self, config: LoadedConfig, runtime: Runtime, store: Any, limiter: Any, metrics: Any, log: Any,
                 references: Any, public: bool = False) -> None:
        self.config = config
        self.runtime = runtime
        self.store = store
        self.limiter = limiter
        self.metrics = metrics
        self.log = log
        self.references = references  # ReferenceFields: re-checked for tenants that changed
        self.public = public  # listening beyond loopback: secrets from ${VAR:-default} are refused
        self.last_reload: dict[str, Any] | None = None
        self.on_swap: list[Callable[[], None]] = []
        self._digest = digest(config.source)
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Future[Any]] = set()

    async def reload(self, reason: str, force: bool = False) -> bool:
        """Load the file again, once its bytes have settled, and swap everything at once.
        A file that does not load is refused: the running configuration stays, and the
        errors are logged with their paths, exactly as `pos-edge check` prints them. A
        file that would remove tenants must also still be the same one settle period
        later: a file rewritten in place can parse, cut short, with tenants missing."""
        async with self._lock:
            path = self.config.source
            text = await settled(path)
            now_digest = hashlib.sha256(text).digest() if text is not None else b""
            if now_digest == self._digest and not force:
                return True
            old = self.runtime
            try:
                cfg = _parse(path, text)
                removed = set(old.config.tenants) - set(cfg.tenants)
                if removed and await settled(path) != text:
                    self.log.info("config_reload_deferred", config=path, reason=reason,
                                  detail=f"the file changed again; it would remove {sorted(removed)}")
                    return False  # the write goes on: its end raises another event
                self._digest = now_digest  # the same broken bytes are reported once, not at every event
                refusal = self._cannot_take(cfg)
                if refusal:
                    raise config_mod.ConfigError(path, refusal)
                runtime = build_runtime(cfg, self.store, self.limiter, old.upstreams, self.log, previous=old)
            except config_mod.ConfigError as exc:
                self._digest = now_digest
                errors = exc.lines()
                self.last_reload = {"ok": False, "reason": reason, "errors": errors}
                self.metrics.reloads.labels("failed").inc()
                self.log.error("config_reload_failed", config=path, reason=reason, errors=errors)
                return False
            self.config, self.runtime = cfg, runtime  # the swap
            before, after = old.config.tenants, cfg.tenants
            upstreams = runtime.upstreams
            origins = {t.erpnext.origin for t in after.values()}
            upstreams.keep(origins)
            for origin in origins:
                upstreams.session(origin)
            # pools no tenant uses any more close when their last call ends
            upstreams.retire({t.erpnext.origin for t in before.values()} - origins)
            changed = {k: t for k, t in runtime.services.tenants.items() if before.get(k) != t.config}
            if changed:
                task = asyncio.ensure_future(self.references.check_all(changed))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            self.last_reload = {"ok": True, "reason": reason}
            self.metrics.reloads.labels("ok").inc()
            self.log.info("config_reloaded", config=path, reason=reason, pid=os.getpid(), tenants=len(after),
                          added=sorted(set(after) - set(before)), removed=sorted(set(before) - set(after)),
                          changed=sorted(k for k in changed if k in before))
            for callback in self.on_swap:
                callback()
            return True

    def _cannot_take(self, cfg: LoadedConfig) -> list[tuple[str, str]]:
        """What a running process cannot take from a new file."""
        out = []
        for key in ("store", "rate_limit_storage", "server", "metrics.listen"):
            if _get(cfg.gateway, key) != _get(self.config.gateway, key):
                out.append((f"gateway.{key}", "cannot change while running: restart pos-edge to use the new value"))
        if cfg.defaulted_secrets and self.public:
            out += [(p, "comes from a ${VAR:-default} in the file; serve listens beyond loopback")
                    for p in cfg.defaulted_secrets]
        return out


SETTLE = 1.0  # seconds a file's bytes must stay the same before it is read as a new config
_SETTLE_TRIES = 10


async def settled(path: str) -> bytes | None:
    """The file's bytes once two reads SETTLE seconds apart agree (None: unreadable, or
    still changing after _SETTLE_TRIES periods)."""
    before = _read(path)
    for _ in range(_SETTLE_TRIES):
        await asyncio.sleep(SETTLE)
        now = _read(path)
        if now is not None and now == before:
            return now
        before = now
    return None


def _read(path: str) -> bytes | None:
    try:
        return Path(path).read_bytes()
    except OSError:
        return None


def _parse(path: str, text: bytes | None) -> LoadedConfig:
    if text is None:
        raise config_mod.ConfigError(path, [("", "cannot read the file, or it kept changing for "
                                                 f"{SETTLE * _SETTLE_TRIES:g} s")])
    try:
        return config_mod.parse(text.decode("utf-8"), path)
    except UnicodeDecodeError:
        raise config_mod.ConfigError(path, [("", "the file is not UTF-8")]) from None


def _get(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def digest(path: str) -> bytes:
    """sha256 of the file's bytes (empty when it cannot be read)."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).digest()
    except OSError:
        return b""
