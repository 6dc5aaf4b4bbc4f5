"""Worker processes for the corpus's long passes (hashing, counting, tokenizing), each on a pipe of its own,
that a stop signal ends within a fraction of a second; and the same interface run in-process for small inputs.

What the workers hold and run is the caller's (``tokens``): an initialiser run once in each worker, then
module-level functions applied to one task each. Standard library only.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..errors import LstmTextError


class Cancelled(LstmTextError):
    """A stop signal arrived while tokenizing: nothing was trained or written."""

    def __init__(self, signum: int):
        self.exit_code = 128 + signum
        super().__init__("interrupted while tokenizing the corpus; nothing was trained (the token cache is unchanged)")


def workers() -> int:
    """Cores this process may use (its CPU affinity, which containers and taskset narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _worker_main(conn, init: Callable, initargs: tuple) -> None:
    """A worker's life: set its signals, run ``init(*initargs)``, then answer (fn, args) tasks on ``conn`` until
    the parent closes it or kills the process."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent alone decides
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's save-and-stop handler: a group stop kills
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_SETMASK, set())  # the parent held them across the fork (Workers)
    _die_with_parent()
    try:
        init(*initargs)
        failed = None
    except Exception as e:  # reported with each task: the parent raises it where it collects
        failed = e
    while True:
        try:
            fn, args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            if failed is not None:
                raise failed
            out = (True, fn(*args))
        except Exception as e:
            out = (False, e)
        try:
            conn.send(out)
        except (TypeError, AttributeError, ValueError) as e:  # a result or an error that does not pickle
            conn.send((False, LstmTextError(f"a tokenizing worker failed: {out[1]!r} ({e})")))


def _die_with_parent() -> None:
    """Linux: SIGKILL this worker when its parent dies (a SIGKILL to the parent leaves no worker running)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except (OSError, AttributeError):
        pass


class Workers:
    """Worker processes, each on a pipe of its own (``multiprocessing.Pool`` shares one queue lock among its
    workers: a signal to the whole process group kills the worker that holds it, and ``Pool.terminate`` then
    waits for that lock for ever). Here no lock is shared, so stopping is a SIGKILL to each worker and a join:
    at any moment, in well under a second. Tasks run in the order given; ``apply_async`` returns a handle."""

    def __init__(self, n: int, init: Callable, initargs: tuple):
        import multiprocessing as mp
        import signal

        # fork where there is one, as torch's DataLoader does: workers run NumPy and SentencePiece only (never
        # torch's threads), and spawn would re-run a user's script that calls lstm_text.train() unguarded
        ctx: Any = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        self.procs: list = []
        self.conns: list = []  # the parent's ends of the pipes: Connection
        self.idle: list[int] = []
        self.busy: dict[int, Pending] = {}
        self.waiting: deque = deque()
        mask = hasattr(signal, "pthread_sigmask")
        if mask:  # a worker must not run the parent's handler before its own are set: hold the signals till then
            old = signal.pthread_sigmask(signal.SIG_BLOCK, _stop_signals())
        try:
            for i in range(n):
                here, there = ctx.Pipe()
                p = ctx.Process(target=_worker_main, args=(there, init, initargs), daemon=True, name=f"lstm-text-{i}")
                p.start()
                there.close()
                self.procs.append(p)
                self.conns.append(here)
                self.idle.append(i)
        except BaseException:
            self.terminate()
            raise
        finally:
            if mask:
                signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def apply_async(self, fn, args) -> Pending:
        r = Pending(self)
        self.waiting.append((r, fn, args))
        self._dispatch()
        return r

    def _dispatch(self) -> None:
        while self.idle and self.waiting:
            i = self.idle.pop()
            r, fn, args = self.waiting.popleft()
            self.busy[i] = r
            try:
                self.conns[i].send((fn, args))
            except OSError:
                self._lost(i)

    def poll(self, timeout: float) -> None:
        """Collect the results that arrive within ``timeout`` seconds."""
        from multiprocessing.connection import wait

        by_conn = {self.conns[i]: i for i in self.busy}
        for c in wait(list(by_conn), timeout):
            i = by_conn[c]
            try:
                ok, value = self.conns[i].recv()
            except (EOFError, OSError):
                self._lost(i)
            self.busy.pop(i).done = (ok, value)
            self.idle.append(i)
        self._dispatch()

    def _lost(self, i: int):
        """Worker ``i`` died: a stop signal to the whole group (the stop is ours too), or a fault."""
        self.procs[i].join(5.0)
        code = self.procs[i].exitcode
        if code is not None and -code in _stop_signals():
            raise Cancelled(-code) from None
        raise LstmTextError(f"a tokenizing worker process died (exit code {code}); is memory short?") from None

    def terminate(self) -> None:
        for p in self.procs:
            if p.exitcode is None:
                p.kill()
        for p in self.procs:
            p.join()
        for c in self.conns:
            c.close()
        self.procs, self.conns, self.idle, self.busy = [], [], [], {}


class Pending:
    """A task's result: ``done`` is (ok, value) once it arrived."""

    def __init__(self, pool: Workers | None, done: tuple | None = None):
        self.pool, self.done = pool, done

    def ready(self) -> bool:
        return self.done is not None

    def wait(self, timeout: float) -> None:
        if self.done is None:
            assert self.pool is not None  # a result made without a pool is done from the start
            self.pool.poll(timeout)

    def get(self):
        ok, value = self.done
        if not ok:
            raise value
        return value


class Inline:
    """The pool's interface, run in this process (small inputs: no worker start-up)."""

    def __init__(self, init: Callable, initargs: tuple):
        init(*initargs)

    def apply_async(self, fn, args) -> Pending:
        try:
            return Pending(None, (True, fn(*args)))
        except Exception as e:  # raised when collected, as a pool does
            return Pending(None, (False, e))

    def terminate(self):
        pass


def _stop_signals() -> set[int]:
    import signal

    return {signal.SIGINT, signal.SIGTERM}


def start_pool(init: Callable, initargs: tuple, inline: bool) -> Workers | Inline:
    """``workers()`` processes, each initialised by ``init(*initargs)``; in this process when ``inline`` or when
    there is one core."""
    if inline or workers() == 1:
        return Inline(init, initargs)
    return Workers(workers(), init, initargs)


def ordered(pool, fn, tasks: Iterable, cancelled: Callable[[], int], window: int = 0) -> Iterator:
    """fn(task) for each task, in order, with at most ``window`` in flight (memory stays bounded); a stop
    signal (``cancelled()`` non-zero) is noticed within a fraction of a second."""
    window = window or 2 * workers() + 1
    todo: deque = deque()
    it = iter(tasks)
    while True:
        while len(todo) < window:
            t = next(it, None)
            if t is None:
                break
            todo.append(pool.apply_async(fn, (t,)))
        if not todo:
            return
        head = todo.popleft()
        while not head.ready():
            if sig := cancelled():
                raise Cancelled(sig)
            head.wait(0.1)
        yield head.get()
