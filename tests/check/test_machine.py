"""Machine facts from nvidia-smi and /proc/meminfo text, the GPU table, and overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.check.hardware import GpuTableSpec, load_gpu_table
from app.check.machine import Machine, local_size_gib, parse_meminfo, parse_nvidia_smi, read_machine
from app.diagnosis.knowledge import read_spec


def test_nvidia_smi_rows() -> None:
    text = "NVIDIA H100 80GB HBM3, 81559, 9.0\nNVIDIA H100 80GB HBM3, 81559, 9.0\n"
    assert parse_nvidia_smi(text) == {"gpu": "NVIDIA H100 80GB HBM3", "gpus": 2, "gpu_memory_gib": 79.6,
                                      "compute_capability": 9.0}


def test_nvidia_smi_of_an_old_driver_without_compute_capability() -> None:
    assert parse_nvidia_smi("Tesla V100-SXM2-32GB, 32768\n") == {"gpu": "Tesla V100-SXM2-32GB", "gpus": 1,
                                                                 "gpu_memory_gib": 32.0}


def test_nvidia_smi_with_no_gpus() -> None:
    assert parse_nvidia_smi("No devices were found\n") == {}


def test_meminfo() -> None:
    text = "MemTotal:       65758576 kB\nMemFree:         1234 kB\n"
    assert parse_meminfo(text) == 62.7
    assert parse_meminfo("garbage") is None


@pytest.mark.parametrize(
    ("name", "capability", "memory"),
    [("Tesla V100-SXM2-16GB", 7.0, 16), ("NVIDIA A100-SXM4-40GB", 8.0, 40), ("A100", 8.0, 80), ("Tesla T4", 7.5, 15),
     ("NVIDIA H200", 9.0, 141), ("NVIDIA GeForce RTX 4090", 8.9, 24)],
)
def test_the_gpu_table_knows_a_card_by_its_name(name: str, capability: float, memory: float) -> None:
    model = load_gpu_table().lookup(name)
    assert model is not None and (model.compute_capability, model.memory_gib) == (capability, memory)


def test_every_gpu_table_entry_matches_its_names_first() -> None:
    spec = read_spec(Path(__file__).parents[2] / "hardware" / "gpus.yaml", GpuTableSpec, kind="GPU table")
    table = load_gpu_table()
    for entry in spec.gpus:
        for name in entry.names:
            found = table.lookup(name)
            assert found is not None and found.memory_gib == entry.memory_gib, f"{name} is read as another card"


def test_a_name_completes_capability_and_memory_but_never_overrides_them() -> None:
    table = load_gpu_table()
    completed = Machine(gpu="Tesla V100-SXM2-32GB").completed(table)
    assert (completed.compute_capability, completed.gpu_memory_gib) == (7.0, 32)
    assert Machine(gpu="V100", gpu_memory_gib=16).completed(table).gpu_memory_gib == 16


def test_overrides_win_and_a_given_gpu_drops_this_machines_card(tmp_path: Path) -> None:
    machine = read_machine(output_dir=str(tmp_path / "not-yet"), dataset_paths=[],
                           overrides={"gpu": "V100", "host_memory_gib": 64})
    assert machine.gpu == "V100" and machine.host_memory_gib == 64
    assert machine.sources["gpu"] == "given"
    assert machine.gpu_memory_gib is None  # the V100's, from the table, not this machine's own card
    assert machine.disk_free_gib is not None and machine.disk_free_gib > 0


def test_local_dataset_size(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "part-0.jsonl").write_bytes(b"x" * (1 << 20))
    (tmp_path / "one.jsonl").write_bytes(b"x" * (1 << 20))
    assert local_size_gib([str(tmp_path / "data"), str(tmp_path / "one.jsonl"), "hub/dataset-id"]) == 0.0
    assert local_size_gib(["hub/dataset-id"]) is None


def test_the_output_of_nvidia_smi_on_an_h200_machine() -> None:
    # `nvidia-smi --query-gpu=name,memory.total,compute_cap --format=csv,noheader,nounits`, as a real H200 printed it
    assert parse_nvidia_smi("NVIDIA H200, 143771, 9.0\n") == {"gpu": "NVIDIA H200", "gpus": 1, "gpu_memory_gib": 140.4,
                                                              "compute_capability": 9.0}
