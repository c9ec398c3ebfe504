"""A Prometheus endpoint for long-running processes (docs/integrations.md).

from footprint.integrations.prometheus import serve
serve(9464)            # http://127.0.0.1:9464/metrics, following every run of this process

or ``footprint run --metrics-port 9464 -- python serve.py``. The tracker never imports this: the
endpoint follows runs through the run listener interface (footprint.listeners).

Exposed (``prometheus_client``'s text format):

- ``footprint_energy_joules_total{device,kind,method,task,model,variant}``: each device's energy,
  the runs' own share, advanced at every sampler tick and brought to each run's record exactly at
  its end; never reset within the process, so a second run continues it.
- ``footprint_power_watts{...same labels}``: the mean power over the last tick (0 between runs).
- ``footprint_emissions_kilograms_total{task,model,variant}``: operational emissions, likewise
  (runs with a region or intensity only).
- ``footprint_runs_total{status,task,model,variant}`` (ended runs) and ``footprint_runs_live``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from footprint import runtime
from footprint.errors import UsageError
from footprint.listeners import add_listener, remove_listener

if TYPE_CHECKING:
    from footprint.record import RunRecord
    from footprint.run import Run
    from footprint.sampler import Snapshot

DEVICE_LABELS = ("device", "kind", "method", "task", "model", "variant")
RUN_LABELS = ("task", "model", "variant")


@dataclass
class _Followed:
    """What the endpoint knows of one live run (from its latest tick)."""

    run_labels: tuple[str, str, str]
    device_labels: dict[str, tuple[str, ...]]
    energy_j: dict[str, float] = field(default_factory=dict)
    power_w: dict[str, float] = field(default_factory=dict)
    emissions_kg: float = 0.0
    t: float | None = None


class Exporter:
    """The run listener, and the Prometheus collector of its metrics (usable without the HTTP
    server: ``registry`` can be served or pushed any way prometheus_client offers).

    Totals are kept as figures, not as increments: a counter is the sum of its ended runs'
    record values plus each live run's latest tick, so at a run's end it holds the records'
    sum exactly (no rounding from adding many small steps).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self._lock = threading.Lock()
        self._followed: dict[str, _Followed] = {}
        self._done_j: dict[tuple[str, ...], float] = {}
        self._done_kg: dict[tuple[str, ...], float] = {}
        self._ended: dict[tuple[str, ...], int] = {}
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.registry.register(self)

    # -- the listener

    def on_start(self, run: Run) -> None:
        cfg = run.config
        labels = (cfg.task or "", cfg.model or "", cfg.variant or "")
        devices: dict[str, tuple[str, ...]] = {
            d.id: (d.id, d.kind, d.method, *labels) for d in run.devices
        }
        with self._lock:
            self._followed[run.id] = _Followed(labels, devices)
            for dl in devices.values():
                self._done_j.setdefault(dl, 0.0)

    def on_tick(self, run: Run, snapshot: Snapshot) -> None:
        now = run.device_energies_j(snapshot)
        emissions = run.so_far(snapshot)[2]
        with self._lock:
            f = self._followed.get(run.id)
            if f is None:
                return
            if f.t is not None and snapshot.t > f.t:
                dt = snapshot.t - f.t
                f.power_w = {d: max(0.0, e - f.energy_j.get(d, 0.0)) / dt for d, e in now.items()}
            f.t = snapshot.t
            f.energy_j = {d: max(e, f.energy_j.get(d, 0.0)) for d, e in now.items()}
            if emissions is not None:
                f.emissions_kg = max(f.emissions_kg, emissions)

    def on_phase_start(self, run: Run, phase: Any) -> None:
        """Phases are not exported (their energy is in the record)."""

    def on_phase_end(self, run: Run, phase: Any) -> None:
        """Phases are not exported (their energy is in the record)."""

    def on_end(self, run: Run, record: RunRecord) -> None:
        with self._lock:
            f = self._followed.pop(run.id, None)
            if f is None:
                return
            for d in record.devices:
                dl = f.device_labels.get(d.id)
                if dl is not None:
                    self._done_j[dl] = self._done_j.get(dl, 0.0) + d.energy_j
            if record.emissions_kg is not None:
                rl = f.run_labels
                self._done_kg[rl] = self._done_kg.get(rl, 0.0) + record.emissions_kg
            status = (record.status, *f.run_labels)
            self._ended[status] = self._ended.get(status, 0) + 1

    # -- the collector

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            energy = dict(self._done_j)
            power = dict.fromkeys(self._done_j, 0.0)
            emissions = dict(self._done_kg)
            for f in self._followed.values():
                for dev, dl in f.device_labels.items():
                    energy[dl] = energy.get(dl, 0.0) + f.energy_j.get(dev, 0.0)
                    power[dl] = power.get(dl, 0.0) + f.power_w.get(dev, 0.0)
                if f.emissions_kg:
                    key = f.run_labels
                    emissions[key] = emissions.get(key, 0.0) + f.emissions_kg
            ended = dict(self._ended)
            live = len(self._followed)
        families: list[tuple[type, str, str, tuple[str, ...], dict]] = [
            (CounterMetricFamily, "footprint_energy_joules",
             "Energy of each device, the runs' own share (J); each run's record exactly at its end",
             DEVICE_LABELS, energy),
            (GaugeMetricFamily, "footprint_power_watts",
             "Mean power of each device over the last sampler tick (W); 0 between runs",
             DEVICE_LABELS, power),
            (CounterMetricFamily, "footprint_emissions_kilograms",
             "Operational emissions (kg CO2e) of runs with a region or carbon intensity",
             RUN_LABELS, emissions),
            (CounterMetricFamily, "footprint_runs", "Runs ended, by status",
             ("status", *RUN_LABELS), ended),
        ]  # fmt: skip
        for kind, name, doc, labelnames, values in families:
            family = kind(name, doc, labels=labelnames)
            for labels, value in values.items():
                family.add_metric(labels, value)
            yield family
        yield GaugeMetricFamily("footprint_runs_live", "Runs being measured now", value=live)


@dataclass
class Endpoint:
    """A served endpoint: ``url`` (its ``/metrics``), the :class:`Exporter`, ``close()``."""

    addr: str
    port: int
    exporter: Exporter
    _server: Any
    _thread: Any

    @property
    def url(self) -> str:
        host = f"[{self.addr}]" if ":" in self.addr else self.addr
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving and stop following runs (runs already followed keep it until they end)."""
        global _endpoint
        remove_listener(self.exporter)
        self._server.shutdown()
        self._server.server_close()
        with _lock:
            if _endpoint is self:
                _endpoint = None


_lock = threading.Lock()
_endpoint: Endpoint | None = None


def _not_local_rank_0() -> bool:
    for var in ("LOCAL_RANK", "SLURM_LOCALID"):
        value = os.environ.get(var)
        if value is not None and value.strip() not in ("", "0"):
            return True
    return False


def serve(
    port: int = 9464, addr: str = "127.0.0.1", *, every_rank: bool = False
) -> Endpoint | None:
    """Serve the metrics of every run this process starts from now on, at
    ``http://addr:port/metrics``, until the process exits (or ``close()``).

    ``addr`` defaults to 127.0.0.1 (this machine only): give ``0.0.0.0`` to let a Prometheus
    elsewhere scrape it. ``port=0`` picks a free port (see ``.port``). One endpoint per process:
    a second call with the same address gives the same endpoint, another one is an error. In a
    job of many processes the node's devices are read by local rank 0, so on other local ranks
    (``LOCAL_RANK`` / ``SLURM_LOCALID`` not 0) this serves nothing and returns None, unless
    ``every_rank``.
    """
    global _endpoint
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise UsageError(f"the metrics port must be a whole number from 0 to 65535, got {port!r}")
    if not every_rank and _not_local_rank_0():
        return None
    with _lock:
        if _endpoint is not None:
            if (_endpoint.addr, _endpoint.port) == (addr, port) or (
                port == 0 and addr == _endpoint.addr
            ):
                if _endpoint.exporter not in runtime.get().listeners:  # after runtime.reset()
                    add_listener(_endpoint.exporter)
                return _endpoint
            raise UsageError(
                f"this process already serves its metrics at {_endpoint.url}: one endpoint per "
                "process (scrape that one, or close() it first)"
            )
        exporter = Exporter()
        try:
            server, thread = start_http_server(port, addr=addr, registry=exporter.registry)
        except OSError as exc:
            raise UsageError(
                f"cannot serve metrics on {addr}:{port}: {exc.strerror or exc} (choose another "
                "--metrics-port, or 0 for any free one)"
            ) from exc
        add_listener(exporter)
        _endpoint = Endpoint(addr, server.server_address[1], exporter, server, thread)
        return _endpoint
