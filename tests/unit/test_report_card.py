"""The Hugging Face model-card snippet, read back by Hugging Face's own parser."""

from __future__ import annotations

import pytest
from synthetic import make_record

from footprint import carbon
from footprint.errors import RegionError
from footprint.formatting import fmt_duration, fmt_emissions, fmt_kwh
from footprint.reporting.card import card, co2_eq_emissions

huggingface_hub = pytest.importorskip("huggingface_hub")


def parsed(text: str) -> dict:
    """What the Hub reads: RepoCard's metadata, as a plain dict."""
    from huggingface_hub import ModelCard

    return ModelCard(text).data.to_dict()["co2_eq_emissions"]


@pytest.mark.parametrize(
    "grams",
    [406.399, 0.0000123, 12_345_678.9, 1.0],
    ids=["grams", "tiny (no exponent for YAML 1.1)", "tonnes", "whole"],
)
def test_hub_reads_back_every_field(grams):
    record = make_record('train <x> "quoted"', points=10, region="US-CA")
    record = record.replace(emissions_kg=grams / 1000)
    meta = parsed(card(record))
    assert isinstance(meta["emissions"], float)
    assert meta["emissions"] == float(f"{grams:.6g}")  # grams, 6 significant digits
    assert meta["source"] == "footprint 0.1.0"
    assert meta["training_type"] == "pre-training"
    assert meta["geographical_location"] == "California (US-CA)"
    assert meta["hardware_used"] == (
        "1 x NVIDIA A100-SXM4-40GB (GPU, measured), "
        "1 x AMD EPYC 7763 64-Core Processor (CPU, estimated)"
    )
    assert meta == co2_eq_emissions(record)


def test_training_type_argument_then_tag():
    record = make_record("ft", points=10, tags={"training_type": "fine-tuning"})
    assert parsed(card(record))["training_type"] == "fine-tuning"
    assert parsed(card(record, training_type="pre-training"))["training_type"] == "pre-training"


def test_card_body_and_metadata_load(tmp_path):
    from huggingface_hub.repocard import metadata_load

    record = make_record("bert", points=10)
    text = card(record)
    path = tmp_path / "README.md"
    path.write_text(text, encoding="utf-8")
    meta = metadata_load(path)["co2_eq_emissions"]
    assert meta["emissions"] == float(f"{record.emissions_kg * 1000:.6g}")
    body = text.split("---\n", 2)[2]
    assert body.lstrip().startswith("## Environmental impact")
    assert f"using {fmt_kwh(record.energy_kwh)} of IT energy" in body and "France (FR)" in body
    # durations and masses a person reads; what made the figures, without contradiction
    assert f"over {fmt_duration(record.duration_s)} on" in body and " h on" not in body
    assert f"**{fmt_emissions(record.emissions_kg)} CO2e**" in body
    assert "Measured and recorded with footprint" in body and "Measured with" not in body


def test_card_says_failed_imported_and_estimated():
    base = make_record("bert", points=10)
    failed = card(base.replace(status="failed", error="boom"))
    assert "“bert” (failed: it did not finish) emitted" in failed
    imported = card(base.replace(imported_from={"tool": "codecarbon", "path": "e.csv"}))
    assert "Imported from codecarbon with footprint" in imported
    estimated_only = base.replace(
        devices=[{**d.to_dict(), "measured": False} for d in base.devices]
    )
    text = card(estimated_only)
    assert "Estimated with footprint" in text and "Measured" not in text


def test_user_intensity_location_and_no_emissions_error():
    record = make_record("x", points=10)
    record = record.replace(
        **carbon.emissions_for(record.to_dict(), carbon.resolve(carbon_intensity=120.0))
    )
    assert parsed(card(record))["geographical_location"] == (
        "unspecified (carbon intensity 120 g CO2e/kWh)"
    )
    record = record.replace(**carbon.emissions_for(record.to_dict(), carbon.resolve()))
    with pytest.raises(RegionError, match="has no emissions.*footprint recompute"):
        card(record)
