"""Batches the instances of concurrent requests for one worker thread, as TF Serving's batching does: while a batch
runs, requests queue; the next round takes all of them, groups their instances by signature, sorts them by length
and runs them in batches of at most `max_batch_size` and of similar lengths (`length_groups`), so a loaded server
runs full, evenly padded batches and an idle one answers at once. No TensorFlow: `run` does the work."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

# A batch may cost this much more than its inputs unpadded before it is split: a model call costs a few
# milliseconds of its own, a padded column as much as a real one (bench/RESULTS.md, "The model server").
PADDING_SLACK = 0.25
Run = Callable[[Any, str, list[bytes]], Sequence[Any]]  # (state, signature, inputs) -> one result per input


class BatchError(ValueError):
    """A request's inputs failed in the model on their own (not because of other requests in its batch)."""


@dataclasses.dataclass
class _Pending:
    signature: str
    values: list[bytes]
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop


class Batcher:
    """`await submit(signature, values)` gives (state, `run`'s results for `values`), computed by one thread with
    the instances of the other requests submitted meanwhile. `state()` is read once a round and given to each of its
    runs (the model version: a request is never answered by two)."""

    def __init__(self, run: Run, max_batch_size: int, state: Callable[[], Any] = lambda: None):
        self.run, self.max_batch_size, self.state = run, max_batch_size, state
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name="request-batcher", daemon=True)
        self._thread.start()

    async def submit(self, signature: str, values: list[bytes]) -> tuple[Any, list[Any]]:
        loop = asyncio.get_running_loop()
        pending = _Pending(signature, values, loop.create_future(), loop)
        self._queue.put(pending)
        return await pending.future

    def stop(self) -> None:
        """Finishes the requests already queued, then ends the thread."""
        self._queue.put(None)
        self._thread.join()

    def _work(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            round_ = [first]
            while True:  # everything that queued while the previous round ran
                try:
                    pending = self._queue.get_nowait()
                except queue.Empty:
                    break
                if pending is None:
                    self._queue.put(None)  # stop after this round
                    break
                round_.append(pending)
            state = self.state()
            for signature in dict.fromkeys(p.signature for p in round_):
                requests = [p for p in round_ if p.signature == signature]
                try:
                    self._run_signature(state, requests)
                except Exception as error:  # the model failed on inputs that ran fine alone: answer, keep serving
                    logging.getLogger(__name__).exception("A batch failed")
                    for request in requests:
                        request.loop.call_soon_threadsafe(_resolve, request.future, None, error)

    def _run_signature(self, state: Any, requests: list[_Pending]) -> None:
        """Runs the requests' instances in length-sorted batches and answers each request. A batch that fails is run
        again request by request, so that only the requests that fail alone get the error (BatchError)."""
        instances = sorted(
            ((len(value), r, i) for r, request in enumerate(requests) for i, value in enumerate(request.values)),
            key=lambda item: item[0],
        )
        results: list[list[Any]] = [[None] * len(request.values) for request in requests]
        answered: set[int] = set()  # by a run of their own
        for start, end in length_groups([length for length, _, _ in instances], self.max_batch_size):
            batch = [(r, i) for _, r, i in instances[start:end] if r not in answered]
            if not batch:
                continue
            try:
                outputs = self.run(state, requests[0].signature, [requests[r].values[i] for r, i in batch])
            except Exception as error:
                logging.getLogger(__name__).warning("A batch failed (%s); running its requests one by one", error)
                for r in dict.fromkeys(r for r, _ in batch):
                    answered.add(r)
                    self._run_alone(state, requests[r])
                continue
            for (r, i), output in zip(batch, outputs):
                results[r][i] = output
        for r, request in enumerate(requests):
            if r not in answered:
                request.loop.call_soon_threadsafe(_resolve, request.future, (state, results[r]), None)

    def _run_alone(self, state: Any, request: _Pending) -> None:
        try:
            outputs, error = (state, list(self.run(state, request.signature, request.values))), None
        except Exception as own_error:
            outputs, error = None, BatchError(" ".join(str(own_error).split())[:300])
        request.loop.call_soon_threadsafe(_resolve, request.future, outputs, error)


def length_groups(lengths: list[int], max_size: int, slack: float = PADDING_SLACK) -> list[tuple[int, int]]:
    """[start, end) ranges of ascending `lengths`, each at most `max_size` long, whose batch, padded to its longest,
    costs at most 1 + `slack` times its inputs' own lengths: a batch of 32 random reviews split so that the short
    ones do not pay for the longest."""
    groups, start, total = [], 0, 0
    for index, length in enumerate(lengths):
        size = index - start + 1
        if size > max_size or (size > 1 and size * length > (1 + slack) * (total + length)):
            groups.append((start, index))
            start, total = index, 0
        total += length
    if lengths:
        groups.append((start, len(lengths)))
    return groups


def _resolve(future: asyncio.Future, result: Any, error: Exception | None) -> None:
    if future.done():  # the client went away and its request was cancelled
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
