"""The request batcher: concurrent requests share length-sorted batches, each gets its own results, one state a
round, and a request the model cannot read fails alone."""

import asyncio
import threading
import time

from modules import request_batcher


class Recorder:
    """A `run` that answers each input with its length and records the batches it was given."""

    def __init__(self, slow_first: float = 0.0, bad: bytes | None = None):
        self.batches: list[list[bytes]] = []
        self.states: list[object] = []
        self.slow_first, self.bad = slow_first, bad
        self.lock = threading.Lock()
        self.started = threading.Event()

    def __call__(self, state, signature: str, values: list[bytes]) -> list[tuple[str, int]]:
        with self.lock:
            first = not self.batches
            self.batches.append(values)
            self.states.append(state)
        if first:
            self.started.set()
            time.sleep(self.slow_first)  # the other requests queue meanwhile
        if self.bad in values:
            raise ValueError(f"cannot read {self.bad!r}")
        return [(signature, len(value)) for value in values]


def submit_all(batcher: request_batcher.Batcher, run: Recorder, requests: list[tuple[str, list[bytes]]]) -> list:
    """Submits the first request, and once the model runs it, all the others at once."""

    async def main():
        first = asyncio.ensure_future(batcher.submit(*requests[0]))
        await asyncio.to_thread(run.started.wait, 30)
        rest = [batcher.submit(signature, values) for signature, values in requests[1:]]
        return await asyncio.gather(first, *rest, return_exceptions=True)

    return asyncio.run(main())


def test_concurrent_requests_share_length_sorted_batches_and_get_their_own_answers():
    run = Recorder(slow_first=0.3)
    batcher = request_batcher.Batcher(run, max_batch_size=8, state=lambda: "version 1")
    requests = [("text", [b"x" * ((i * 7) % 23 + 1), b"y" * (i % 5 + 1)]) for i in range(40)]
    try:
        results = submit_all(batcher, run, requests)
    finally:
        batcher.stop()
    for (signature, values), (state, outputs) in zip(requests, results):
        assert state == "version 1"
        assert outputs == [(signature, len(value)) for value in values]
    queued = run.batches[1:]  # after the first request's own batch, one round: all the other requests
    assert sum(map(len, queued)) == 78 and max(map(len, queued)) == 8, "the queued requests in batches of at most 8"
    assert len(queued) < 78 / 2, "batched, not one by one"
    for batch in queued:
        lengths = [len(v) for v in batch]
        assert lengths == sorted(lengths)
        assert len(batch) == 1 or len(batch) * lengths[-1] <= 1.25 * sum(lengths), "padding within the slack"
    assert [len(v) for batch in queued for v in batch] == sorted(len(v) for batch in queued for v in batch)


def test_length_groups_split_where_padding_would_cost_more_than_the_slack():
    assert request_batcher.length_groups([], 4) == []
    assert request_batcher.length_groups([10, 10, 11, 12, 12, 12], 4) == [(0, 4), (4, 6)]
    assert request_batcher.length_groups([10, 11, 40, 41, 42, 200], 32) == [(0, 2), (2, 5), (5, 6)]
    assert request_batcher.length_groups([5] * 70, 32) == [(0, 32), (32, 64), (64, 70)]


def test_signatures_run_apart_and_a_request_the_model_cannot_read_fails_alone():
    run = Recorder(slow_first=0.3, bad=b"bad")
    batcher = request_batcher.Batcher(run, max_batch_size=32)
    requests = [("text", [b"warm"]), ("text", [b"good", b"fine"]), ("text", [b"good", b"bad"]),
                ("examples", [b"serialized"]), ("text", [b"also good"])]  # fmt: skip
    try:
        results = submit_all(batcher, run, requests)
    finally:
        batcher.stop()
    assert isinstance(results[2], request_batcher.BatchError) and "cannot read b'bad'" in str(results[2])
    assert results[1] == (None, [("text", 4), ("text", 4)])
    assert results[3] == (None, [("examples", 10)])
    assert results[4] == (None, [("text", 9)])
    assert all({value for value in batch} <= {b"serialized"} or b"serialized" not in batch for batch in run.batches)


def test_the_state_is_read_once_a_round():
    versions = iter(range(100))
    run = Recorder(slow_first=0.3)
    batcher = request_batcher.Batcher(run, max_batch_size=4, state=lambda: next(versions))
    try:
        results = submit_all(batcher, run, [("text", [b"a" * n]) for n in range(1, 12)])
    finally:
        batcher.stop()
    assert [state for state, _ in results] == [0] + [1] * 10, "the requests that queued behind the first: one round"
    assert len(run.batches) >= 4 and run.states == [0] + [1] * (len(run.batches) - 1), "each batch of the round"
