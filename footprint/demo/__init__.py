"""The ``footprint demo`` command's workload: a full model and its compressed variants."""
