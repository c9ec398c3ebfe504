"""Gathering parts through a key-value store (footprint.jobs.channel), against a store that
behaves like torch.distributed's: set / check / get, and compare_set for the nonce."""

from __future__ import annotations

from footprint.jobs import channel
from footprint.jobs.identity import detect


class FakeKV:
    def __init__(self, arrivals=None):
        self.data: dict[str, bytes] = {}
        self.calls = 0
        self.arrivals = dict(arrivals or {})  # key -> after how many check calls it appears

    def set(self, key, value):
        self.data[key] = value.encode() if isinstance(value, str) else value

    def check(self, keys):
        self.calls += 1
        for key, after in list(self.arrivals.items()):
            if self.calls >= after:
                self.data[key] = b"late"
                del self.arrivals[key]
        return all(k in self.data for k in keys)

    def get(self, key):
        return self.data[key]

    def compare_set(self, key, expected, desired):
        if key not in self.data and expected == "":
            self.data[key] = desired.encode()
        return self.data[key]


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        self.t += 0.01
        return self.t


def test_every_rank_reads_the_nonce_the_first_one_set():
    m = detect(env={"RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "h", "MASTER_PORT": "1"})
    assert m is not None
    kv = FakeKV()
    first = channel.agree_nonce(kv, m)
    assert first and channel.agree_nonce(kv, m) == first == channel.agree_nonce(kv, m)


def test_collect_takes_what_arrives_within_the_timeout():
    kv = FakeKV(arrivals={"footprint/j/part/2": 3})
    assert channel.publish(kv, "j", 1, '{"rank": 1}')
    got = channel.collect(kv, "j", [1, 2, 3], timeout_s=0.5, clock=Clock())
    assert got == {1: '{"rank": 1}', 2: "late"}  # rank 3 never came: given up at the deadline


def test_collect_without_waiting_and_when_a_signal_is_held():
    kv = FakeKV(arrivals={"footprint/j/part/1": 5})
    assert channel.collect(kv, "j", [1], timeout_s=0.0, clock=Clock()) == {}
    kv2 = FakeKV(arrivals={"footprint/j/part/1": 50})
    got = channel.collect(kv2, "j", [1], timeout_s=60.0, clock=Clock(), stop=lambda: True)
    assert got == {} and kv2.calls == 1  # stopped at once, not after 60 s


def test_a_store_that_fails_keeps_what_arrived():
    class Broken(FakeKV):
        def check(self, keys):
            if keys == ["footprint/j/part/2"]:
                raise RuntimeError("connection reset")
            return super().check(keys)

    kv = Broken()
    channel.publish(kv, "j", 1, "one")
    assert channel.collect(kv, "j", [1, 2], timeout_s=5.0, clock=Clock()) == {1: "one"}
