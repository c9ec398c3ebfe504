"""A job's record built from its parts (footprint.jobs.assemble) and how the store shows it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from footprint.cli import main
from footprint.errors import StoreError
from footprint.jobs.assemble import assemble_job
from footprint.record import new_record
from footprint.store import Store, merge

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc)
JOB = "ab" * 16


def part(
    rank,
    node="node-a",
    *,
    measurer=False,
    start_s=0.0,
    duration_s=10.0,
    devices=(),
    phases=(),
    counts=None,
    metrics=None,
    status="completed",
    world=2,
    timeline=None,
    wrapper=None,
    self_wrapper=False,
    **extra,
):
    run_id = extra.pop("id", None) or f"{rank if rank is not None else 9:02d}" + "c" * 30
    job = {
        "id": JOB, "launcher": "torchrun", "role": "part", "world_size": world, "rank": rank,
        "local_rank": rank, "node": node, "measurer": measurer,
        "wrapper": run_id if self_wrapper else wrapper,
    }  # fmt: skip
    energy_j = sum(d["energy_j"] for d in devices)
    return new_record(
        id=run_id,
        name=extra.pop("name", "train"),
        status=status,
        started_at=(T0 + timedelta(seconds=start_s)).isoformat(),
        duration_s=duration_s,
        energy_kwh=energy_j / 3.6e6,
        devices=list(devices),
        phases=list(phases),
        counts=counts or {},
        metrics=metrics or {},
        timeline=timeline or {},
        job=job,
        pid=1000 + (rank or 0),
        **extra,
    )


def dev(d_id, kind, energy_j, **more):
    return {"id": d_id, "kind": kind, "energy_j": energy_j, "measured": True, "method": "m", **more}


def phase(name, start, end, energy=None, counts=None, parent=None):
    return {
        "name": name, "path": name, "start_s": start, "end_s": end, "energy_j": energy or {},
        "counts": counts or {}, "own_counts": counts or {},
        "attributed_energy_j": energy or {}, "parent": parent,
    }  # fmt: skip


def test_devices_once_counts_summed_metrics_from_rank_zero():
    m = part(
        0, measurer=True, devices=[dev("gpu:0", "gpu", 100.0), dev("cpu:0", "cpu", 50.0)],
        counts={"samples": 10}, metrics={"accuracy": 0.9}, carbon_intensity_g_per_kwh=None,
        phases=[phase("epoch", 1.0, 9.0, {"gpu:0": 80.0, "cpu:0": 40.0}, {"samples": 10})],
    )  # fmt: skip
    other = part(
        1, counts={"samples": 20}, metrics={"accuracy": 0.1, "loss": 2.0},
        phases=[phase("epoch", 1.2, 9.1, counts={"samples": 20})],
    )  # fmt: skip
    job = assemble_job([other, m])
    assert job.id == JOB and job.job is not None and job.job.role == "job"
    assert [d.id for d in job.devices] == ["gpu:0", "cpu:0"]
    assert job.energy_j == pytest.approx(150.0)
    assert job.counts == {"samples": 30}
    assert job.metrics == {"accuracy": 0.9, "loss": 2.0}  # rank 0's, others fill the gaps
    (epoch,) = job.phases
    assert epoch.counts == {"samples": 30} and epoch.energy_j == {"gpu:0": 80.0, "cpu:0": 40.0}
    assert job.status == "completed" and job.job.missing_ranks == ()
    assert [n.node for n in job.job.nodes] == ["node-a"] and job.job.nodes[0].ranks == (0, 1)


def test_several_nodes_prefix_their_devices_and_sum_their_energy_and_emissions():
    a = part(0, "a", measurer=True, devices=[dev("gpu:0", "gpu", 100.0)], world=4,
             emissions_kg=0.01)  # fmt: skip
    b = part(2, "b", measurer=True, devices=[dev("gpu:0", "gpu", 300.0)], world=4,
             emissions_kg=0.03)  # fmt: skip
    rest = [part(1, "a", world=4), part(3, "b", world=4)]
    job = assemble_job([a, b, *rest])
    assert sorted(d.id for d in job.devices) == ["a/gpu:0", "b/gpu:0"]
    assert job.energy_j == pytest.approx(400.0)
    assert job.emissions_kg == pytest.approx(0.04)
    by_node = {n.node: n for n in job.job.nodes}
    assert by_node["b"].energy_kwh == pytest.approx(300.0 / 3.6e6)
    assert by_node["b"].ranks == (2, 3)


def test_a_rank_without_a_part_interrupts_the_job_and_is_named():
    job = assemble_job([part(0, measurer=True, devices=[dev("cpu:0", "cpu", 5.0)], world=3)])
    assert job.status == "interrupted" and job.job.missing_ranks == (1, 2)
    assert any("rank(s) 1, 2 of 3 left no part" in n for n in job.notes)


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (("completed", "running"), "running"),
        (("failed", "interrupted"), "failed"),
        (("completed", "interrupted"), "interrupted"),
        (("completed", "completed"), "completed"),
    ],
)
def test_job_status_from_its_parts(statuses, expected):
    parts = [part(i, measurer=i == 0, status=s) for i, s in enumerate(statuses)]
    assert assemble_job(parts).status == expected


def test_a_failed_rank_names_itself_in_the_error():
    parts = [part(0, measurer=True), part(1, status="failed", error="ValueError: boom")]
    job = assemble_job(parts)
    assert job.status == "failed" and job.error == "rank 1: ValueError: boom"


def test_a_wrapper_measures_and_phase_energy_comes_from_its_timeline():
    wrapper = part(
        None, measurer=True, self_wrapper=True, start_s=0.0, duration_s=4.0,
        devices=[dev("cpu:0", "cpu", 40.0)], name="python", id="ff" * 16,
        timeline={"t_s": [0.0, 1.0, 2.0, 3.0, 4.0], "power_w": {"cpu:0": [5.0, 10.0, 15.0, 10.0]}},
    )  # fmt: skip
    inner = part(
        0, world=1, start_s=1.0, duration_s=2.0, wrapper="ff" * 16, name="bert",
        phases=[phase("epoch", 0.5, 1.5, counts={"samples": 4})],
    )  # fmt: skip
    job = assemble_job([wrapper, inner])
    assert job.name == "bert"  # the wrapped tracker's name, not the command's
    (epoch,) = job.phases
    # the epoch ran from 1.5 s to 2.5 s of the job: half of bucket [1, 2) at 10 W, half at 15 W
    assert epoch.start_s == pytest.approx(1.5) and epoch.end_s == pytest.approx(2.5)
    assert epoch.energy_j == {"cpu:0": pytest.approx(12.5)}
    assert any("integral of the measurer's power timeline" in n for n in job.notes)


def test_gpus_no_process_of_the_job_used_are_dropped():
    seen = {"run_processes_seen": True}
    unseen = {"run_processes_seen": False}
    m = part(0, measurer=True, world=1, devices=[
        dev("gpu:0", "gpu", 10.0, details=seen), dev("gpu:1", "gpu", 20.0, details=unseen),
        dev("cpu:0", "cpu", 5.0),
    ])  # fmt: skip
    job = assemble_job([m])
    assert [d.id for d in job.devices] == ["gpu:0", "cpu:0"] and job.energy_j == 15.0
    unknown = part(0, measurer=True, world=1, devices=[dev("gpu:1", "gpu", 20.0, details=unseen)])
    assert [d.id for d in assemble_job([unknown]).devices] == ["gpu:1"]  # nothing seen: kept


def test_the_store_lists_the_job_once_and_hides_its_parts(tmp_path):
    st = Store(tmp_path)
    plain = new_record(name="plain")
    st.save(plain)
    for p in (part(0, measurer=True, devices=[dev("cpu:0", "cpu", 5.0)]), part(1)):
        path = st.save(p)
        assert path.parent == tmp_path / "jobs" / JOB
    assert sorted(r.id for r in st.records()) == sorted([plain.id, JOB])
    assert len(st.records(parts=True)) == 4
    assert st.get(JOB[:6]).job.role == "job"
    assert st.get("01" + "c" * 6).is_part
    with pytest.raises(StoreError, match="assembled from its parts"):
        st.save(st.get(JOB))


def test_runs_cli_shows_processes_and_parts(tmp_path, capsys):
    st = Store(tmp_path)
    for p in (part(0, measurer=True, devices=[dev("cpu:0", "cpu", 5.0)]), part(1)):
        st.save(p)
    assert main(["runs", "--store", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "2 ranks, 1 node" in out and out.count("train") == 1
    assert main(["runs", "--store", str(tmp_path), "--parts"]) == 0
    out = capsys.readouterr().out
    assert "rank 1 of job" in out and "(measurer)" in out


def test_merge_keeps_the_further_along_copy(tmp_path):
    a, b, dest = Store(tmp_path / "a"), Store(tmp_path / "b"), Store(tmp_path / "dest")
    running = part(0, measurer=True, status="running", heartbeat_at=T0.isoformat())
    done = part(0, measurer=True, duration_s=20.0)
    a.save(running)
    b.save(done)
    b.save(part(1))
    counts = merge([a, b], dest)
    assert counts == {"copied": 2, "replaced": 1, "same": 0, "kept": 0}
    assert merge([b], dest) == {"copied": 0, "replaced": 0, "same": 2, "kept": 0}
    assert merge([a], dest)["kept"] == 1  # the running copy never replaces the finished one
    (job,) = dest.records()
    assert job.status == "completed" and job.job.parts == 2


def test_recompute_of_a_job_recomputes_its_measurers_parts(tmp_path, capsys):
    st = Store(tmp_path)
    st.save(part(0, measurer=True, devices=[dev("cpu:0", "cpu", 3.6e6)]))  # 1 kWh
    st.save(part(1))
    assert main(["recompute", JOB[:8], "--carbon-intensity", "200", "--store", str(tmp_path)]) == 0
    assert "measurer part(s) of job" in capsys.readouterr().out
    assert st.get(JOB).emissions_kg == pytest.approx(0.2)


def test_the_report_shows_each_node_literally(tmp_path):
    from footprint import report

    st = Store(tmp_path / "s")
    hostile = "<b>node</b>"
    st.save(part(0, hostile, measurer=True, devices=[dev("cpu:0", "cpu", 5.0)], world=1))
    out = report(store=st.path, out=tmp_path / "r.html", run_pages=True)
    pages = [p.read_text() for p in out.parent.glob("*.html")]
    page = next(p for p in pages if 'id="job"' in p)
    assert "&lt;b&gt;node&lt;/b&gt;" in page and "<b>node</b>" not in page


def _here() -> dict:
    from footprint.host import machine_identity

    ident = machine_identity()
    return {"boot_id": ident["boot_id"], "pid_namespace": ident["pid_namespace"], "hostname": "h"}


def test_a_live_measurers_checkpoint_shows_the_job_running(tmp_path):
    import os

    st = Store(tmp_path)
    live = part(0, measurer=True, status="running", heartbeat_at=T0.isoformat(), host=_here())
    st.save(live.replace(pid=os.getpid()))
    (job,) = st.records()
    assert job.status == "running"


def test_a_killed_measurers_node_reads_interrupted_with_its_last_checkpoint(tmp_path):
    st = Store(tmp_path)
    dead_pid = 2**22 + 4321  # above any pid_max: no such process
    gone = part(
        0, measurer=True, status="running", heartbeat_at=T0.isoformat(), host=_here(),
        devices=[dev("cpu:0", "cpu", 7.0)],
    ).replace(pid=dead_pid)  # fmt: skip
    st.save(gone)
    st.save(part(1))
    (job,) = st.records()
    assert job.status == "interrupted" and job.energy_j == pytest.approx(7.0)
    assert job.job.nodes[0].status == "interrupted"
    assert any("last checkpoint" in n for n in job.notes)


def test_gpus_the_ranks_say_they_used_decide_which_are_the_jobs():
    m = part(0, measurer=True, devices=[
        dev("gpu:0", "gpu", 10.0, details={"uuid": "GPU-AAAA"}),
        dev("gpu:1", "gpu", 20.0, details={"uuid": "GPU-bbbb", "run_processes_seen": True}),
        dev("cpu:0", "cpu", 5.0),
    ])  # fmt: skip
    other = part(1).replace(job={**part(1).job.to_dict(), "gpus_used": ["aaaa"]})  # torch's form
    job = assemble_job([m, other])
    # the rank's word wins over NVML's process lists (which saw the job on gpu:1 only)
    assert [d.id for d in job.devices] == ["gpu:0", "cpu:0"]
    assert any("gpu:1 dropped: no rank of the node used them" in n for n in job.notes)


def test_torch_gpus_used_asks_torch_only_when_cuda_was_initialised(monkeypatch):
    import sys
    import types
    import uuid

    from footprint.jobs.member import torch_gpus_used

    u0, u1 = uuid.UUID(int=1), uuid.UUID(int=2)

    class Cuda:
        initialised = False

        def is_initialized(self):
            return self.initialised

        def current_device(self):
            return 1

        def device_count(self):
            return 3

        def memory_allocated(self, i):
            return 1024 if i == 0 else 0

        def get_device_properties(self, i):
            return types.SimpleNamespace(uuid=[u0, u1, uuid.UUID(int=3)][i])

    cuda = Cuda()
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))
    assert torch_gpus_used() is None
    cuda.initialised = True
    assert torch_gpus_used() == sorted([f"gpu-{u0}", f"gpu-{u1}"])
    monkeypatch.delitem(sys.modules, "torch")
    assert torch_gpus_used() is None


def test_a_job_enters_leaderboards_and_load_runs_like_a_run(tmp_path):
    import footprint

    st = Store(tmp_path)
    for rank, samples in [(0, 100), (1, 300)]:
        st.save(
            part(
                rank, measurer=rank == 0, task="toy", model="mlp", variant="fp32",
                devices=[dev("cpu:0", "cpu", 400.0)] if rank == 0 else [],
                counts={"samples": samples}, metrics={"accuracy": 0.9} if rank == 0 else {},
            )
        )  # fmt: skip
    board = footprint.leaderboard(store=tmp_path, quality="accuracy", per="samples")
    (row,) = board.to_dict("records")
    # 400 J over every rank's 400 samples: 1 J each, 1,000 J = 0.2778 Wh per 1,000
    assert row["energy_wh_per_1k"] == pytest.approx(1000 / 3600)
    runs = footprint.load_runs(tmp_path)
    assert list(runs["id"]) == [JOB] and runs["count_samples"].iloc[0] == 400
