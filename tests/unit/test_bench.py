"""footprint.bench on a fake clock: warm-up untracked, one run per repeat, queries in a phase."""

from __future__ import annotations

import pytest
from conftest import ConstantPowerSensor

import footprint
from footprint.errors import UsageError
from footprint.store import Store

POWER_W = 100.0


class Model:
    """Takes 10 s on its first call (JIT, allocation...), then 0.5 s per query."""

    def __init__(self, clock):
        self.clock = clock
        self.calls: list[tuple[int, bool]] = []  # (batch size, tracked?)

    def __call__(self, batch):
        first = not self.calls
        self.calls.append((len(batch), footprint.current_run() is not None))
        self.clock.advance(10.0 if first else 0.5 * len(batch))
        return [x * 2 for x in batch]


def test_warmup_untracked_then_one_run_per_repeat(clock, store):
    model = Model(clock)
    batches = [[1, 2, 3, 4], [5, 6]]
    runs = footprint.bench(
        model,
        batches,
        warmup=2,
        repeats=3,
        task="digits",
        model="mlp",
        variant="int8",
        baseline=True,
        sensors=[ConstantPowerSensor(clock, POWER_W)],
        _clock=clock,
        store=store,
    )
    assert model.calls[:2] == [(4, False), (2, False)]  # warm-up cycles the batches, untracked
    assert model.calls[2:] == [(4, True), (2, True)] * 3
    assert len(runs) == 3 and len({r.id for r in runs}) == 3
    for run in runs:
        rec = run.to_dict()
        assert rec["status"] == "completed"
        assert (rec["task"], rec["model"], rec["variant"], rec["baseline"]) == (
            "digits",
            "mlp",
            "int8",
            True,
        )
        assert rec["name"] == "digits/mlp/int8"  # task/model/variant by default
        (phase,) = rec["phases"]
        assert phase["name"] == "inference" and phase["counts"] == {"queries": 6}
        # 6 queries x 0.5 s x 100 W: the 10 s first call is in no run
        assert sum(phase["energy_j"].values()) == pytest.approx(300.0)
        assert rec["counts"] == {"queries": 6}
    assert len(Store(store).records()) == 3


def test_bench_runs_feed_a_per_query_leaderboard(clock, store):
    for variant, seconds_per_query in (("fp32", 0.5), ("int8", 0.125)):

        def predict(batch, s=seconds_per_query):
            clock.advance(s * len(batch))

        runs = footprint.bench(
            predict,
            [list(range(8))] * 5,
            repeats=2,
            name=f"clf-{variant}",
            task="digits",
            model="mlp",
            variant=variant,
            baseline=variant == "fp32",
            sensors=[ConstantPowerSensor(clock, POWER_W)],
            _clock=clock,
            store=store,
        )
        for run in runs:
            run.log(accuracy=0.95 if variant == "fp32" else 0.94)
    df = footprint.leaderboard(task="digits", quality="accuracy", per="queries", store=store)
    rows = df.set_index("variant")
    # fp32: 0.5 s x 100 W = 50 J per query = 50,000 J per 1,000 = 50000/3600 Wh
    assert rows.loc["fp32", "energy_wh_per_1k"] == pytest.approx(50000 / 3600)
    assert rows.loc["int8", "energy_wh_per_1k"] == pytest.approx(12500 / 3600)
    assert rows.loc["int8", "energy_vs_baseline"] == pytest.approx(0.25)
    assert rows.loc["fp32", "n"] == 2 and rows.loc["fp32", "energy_wh_per_1k_std"] == 0.0
    assert rows.loc["int8", "stars"] == 5 and rows.loc["fp32", "stars"] == 1


def test_custom_unit_size_and_phase(clock, store):
    runs = footprint.bench(
        lambda text: clock.advance(1.0),
        ["a b c", "d e"],
        warmup=0,
        repeats=1,
        unit="tokens",
        size=lambda text: len(text.split()),
        phase="decode",
        sensors=[ConstantPowerSensor(clock, POWER_W)],
        _clock=clock,
        save=False,
    )
    (phase,) = runs[0].to_dict()["phases"]
    assert phase["name"] == "decode" and phase["counts"] == {"tokens": 5}


def test_bad_arguments_fail_before_any_work(clock, store):
    calls = []

    def fn(batch):
        calls.append(batch)

    common = {"sensors": [ConstantPowerSensor(clock, POWER_W)], "_clock": clock}
    with pytest.raises(UsageError, match="wrap a generator in list"):
        footprint.bench(fn, (b for b in [[1]]), **common)
    with pytest.raises(UsageError, match="batches is empty"):
        footprint.bench(fn, [], **common)
    with pytest.raises(UsageError, match="repeats must be an integer >= 1, got 0"):
        footprint.bench(fn, [[1]], repeats=0, **common)
    with pytest.raises(UsageError, match="warmup must be an integer >= 0"):
        footprint.bench(fn, [[1]], warmup=-1, **common)
    with pytest.raises(UsageError, match=r"cannot size batch 1 \(int\).*size=lambda"):
        footprint.bench(fn, [[1], 7], **common)
    with pytest.raises(UsageError, match="callable"):
        footprint.bench("model", [[1]], **common)
    assert calls == []


def test_an_exception_ends_the_run_as_failed_and_propagates(clock, store):
    def boom(batch):
        if batch == [2]:
            raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        footprint.bench(
            boom,
            [[1], [2]],
            warmup=0,
            repeats=2,
            sensors=[ConstantPowerSensor(clock, POWER_W)],
            _clock=clock,
            store=store,
        )
    (rec,) = Store(store).records()
    assert rec.status == "failed" and rec.counts == {"queries": 1}


def test_a_repeat_cycles_through_the_batches_until_min_duration_and_counts_each(clock, store):
    calls = []

    def fast(batch):  # 0.1 s per batch of 2: a single pass would be timer noise
        calls.append(len(batch))
        clock.advance(0.1)

    (run,) = footprint.bench(fast, [[1, 2]], warmup=0, repeats=1, min_duration_s=1.0,
                             sensors=[ConstantPowerSensor(clock, POWER_W)], _clock=clock,
                             store=store)  # fmt: skip
    assert len(calls) == 10  # on until 1 s has passed
    assert run.record.counts == {"queries": 20}
    assert run.record.phases[0].energy_j["gpu:0"] == pytest.approx(100.0)
    assert run.record.name.endswith(".fast")  # no task/model/variant: its qualified name


def test_bench_interleaved_runs_the_candidates_repeats_in_turn(clock, store):
    order = []

    def make(label):
        def fn(batch):
            order.append((label, footprint.current_run() is not None))
            clock.advance(0.5)

        return fn

    sensors = [ConstantPowerSensor(clock, POWER_W)]
    a, b = footprint.bench_interleaved(
        [
            footprint.Candidate(make("A"), [[1]], variant="fp32", baseline=True),
            footprint.Candidate(make("B"), [[1]], variant="int8", name="quantised"),
        ],
        warmup=1, repeats=2, min_duration_s=0, task="digits", model="mlp",
        sensors=sensors, _clock=clock, store=store,
    )  # fmt: skip
    assert order == [("A", False), ("B", False), ("A", True), ("B", True), ("A", True),
                     ("B", True)]  # fmt: skip
    assert [r.record.name for r in a] == ["digits/mlp/fp32"] * 2 and a[0].record.baseline
    assert [r.record.name for r in b] == ["quantised"] * 2 and b[0].record.variant == "int8"
    with pytest.raises(UsageError, match="Candidate"):
        footprint.bench_interleaved([(make("A"), [[1]])])


@pytest.mark.parametrize("bad", [-1, float("inf"), "1", True])
def test_bad_min_duration_is_refused_before_any_work(bad):
    with pytest.raises(UsageError, match="min_duration_s must be a number of seconds >= 0"):
        footprint.bench(lambda b: None, [[1]], min_duration_s=bad)
