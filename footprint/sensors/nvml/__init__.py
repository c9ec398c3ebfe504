"""NVIDIA GPUs through NVML (the ``nvidia-ml-py`` binding, imported only when GPUs are discovered).

Two methods, chosen per GPU when it is discovered (docs/sensors-nvml.md):

- ``"nvml-energy-counter"``: ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since the driver loaded;
  Volta and newer). A reading is the counter's difference since the sensor was created: exact at
  the instant of the read, no background work.
- ``"nvml-power-polling"``: older GPUs only report power (``nvmlDeviceGetPowerUsage``, mW). One
  background thread per :func:`discover_gpus` call integrates it for all such GPUs, only while a
  run has the sensor started, by *stratified jittered sampling*: time is cut into strata of
  ``poll_interval_s`` and power is sampled once at a uniformly random instant inside each
  stratum, whose energy is that power times the stratum's width. A workload that is periodic
  cannot alias against the sampling the way it can against a fixed period. All the GPUs share
  the strata and their instants (one wake-up per stratum), and the thread aims early by its
  usual wake-up lateness; a sample that comes late still counts for the stratum it was meant for.

Device selection follows CUDA: ``CUDA_VISIBLE_DEVICES`` (indices, ``GPU-`` UUIDs or unique UUID
prefixes; ``""`` or ``-1`` selects none; the list stops at the first invalid or repeated entry),
unless ``gpus=`` names physical devices explicitly. Sensor ids are ``"gpu:<NVML index>"``.

The package: :mod:`.session` (NVML, once per process), :mod:`.discover` (device selection),
:mod:`.counter` (method 1), :mod:`.polling` (method 2, which drives the integrator in
:mod:`footprint.sensors.stratified`).
"""

from __future__ import annotations

from footprint.sensors.nvml.discover import discover_gpus
from footprint.sensors.nvml.session import (
    FROM_ENVIRONMENT,
    METHOD_COUNTER,
    METHOD_POLLING,
    driver_version,
)

__all__ = [
    "FROM_ENVIRONMENT",
    "METHOD_COUNTER",
    "METHOD_POLLING",
    "discover_gpus",
    "driver_version",
]
