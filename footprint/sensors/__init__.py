"""Energy sources, one module per source, each behind :class:`footprint.sensors.base.Sensor`."""
