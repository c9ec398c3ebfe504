"""Shared fixtures: an isolated store, and in-process sensors driven by a fake clock."""

from __future__ import annotations

import threading
import warnings

import pytest

from footprint.errors import SensorError
from footprint.sensors.base import DeviceInfo, Reading, Sensor


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, t: float = 1000.0) -> None:
        self.t = t
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.t

    def advance(self, dt_s: float) -> None:
        with self._lock:
            self.t += dt_s


class ConstantPowerSensor(Sensor):
    """Energy = power_w x (clock - t0): exact at any instant the clock says."""

    def __init__(
        self,
        clock: FakeClock,
        power_w: float,
        dev_id: str = "gpu:0",
        kind="gpu",
        measured: bool = True,
    ) -> None:
        super().__init__()
        self.clock, self.power_w, self.t0 = clock, power_w, clock()
        self.fail_after: float | None = None
        self.device = DeviceInfo(
            dev_id, kind, f"fake {kind}", "fake-counter" if measured else "estimate:fake", measured
        )

    def energy_at(self, t: float) -> float:
        return self.power_w * (t - self.t0)

    def read(self) -> Reading:
        t = self.clock()
        if self.fail_after is not None and t > self.fail_after:
            raise SensorError(f"{self.device.id} went away")
        return Reading(self.energy_at(t))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A fresh store directory, also set as FOOTPRINT_DIR so nothing lands in the checkout."""
    path = tmp_path / "runs"
    monkeypatch.setenv("FOOTPRINT_DIR", str(path))
    return path


@pytest.fixture(autouse=True)
def _no_stray_store(tmp_path, monkeypatch):
    # Runs that forget store= must not litter the working directory.
    monkeypatch.setenv("FOOTPRINT_DIR", str(tmp_path / "default-store"))
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        yield


@pytest.fixture(autouse=True, scope="session")
def _every_record_round_trips():
    """Every record any test reads or builds (store files, the tracker's, the importer's, the
    factories') must come back as it went in: ``to_dict(from_dict(x)) == upgrade(x)`` as JSON.
    Checked where every path meets: the check of an upgraded dict (``from_dict`` and the
    tracker's own assembly both go through it)."""
    import json

    from footprint.record.model import RunRecord, _Part

    original = RunRecord.__dict__.get("check")

    def checked(cls, value, path):
        record = _Part.check.__func__(cls, value, path)
        if path == "" and isinstance(value, dict):
            as_json = json.dumps(record.to_dict(), sort_keys=True)
            assert as_json == json.dumps(value, sort_keys=True), "record did not round-trip"
        return record

    RunRecord.check = classmethod(checked)  # type: ignore[method-assign, assignment]
    yield
    if original is None:
        del RunRecord.check
    else:
        RunRecord.check = original  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _fresh_runtime():
    """Each test starts from the documented reset: no listeners, caches or warned-once keys
    left by another test (footprint.runtime.reset)."""
    from footprint import runtime

    runtime.reset()
    yield
    runtime.reset()


#: Modules that are slow as a whole (pytestmark = pytest.mark.slow) and costly even to collect
#: (torch, the browser driver): a run that deselects slow tests does not import them at all.
SLOW_MODULES = ("test_demo.py", "test_demo_models.py", "test_report_browser.py")


def pytest_ignore_collect(collection_path, config):
    markexpr = config.getoption("markexpr", "") or ""
    if collection_path.name in SLOW_MODULES and markexpr.replace(" ", "") == "notslow":
        return True
    return None
