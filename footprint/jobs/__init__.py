"""One job, many processes (docs/distributed.md).

:mod:`~footprint.jobs.identity` decides, when a run starts, whether the process is a member of
a job (an explicit ``job=``, a launcher's environment, a wrapping ``footprint run``) and whether
it is its node's measurer; :mod:`~footprint.jobs.channel` agrees the job's key and gathers parts
through torch.distributed's key-value store; :mod:`~footprint.jobs.assemble` builds the job's
record from the parts the store holds. A process with no launcher around it is not a member:
its runs are exactly what they were before jobs existed.
"""
