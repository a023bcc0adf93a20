"""Where the answerability model lives: the shipped folder, or SPEECHQA_ANSWERABILITY_DIR for a recalibration."""

from __future__ import annotations

import json
import shutil

import pytest

from api.assemble import service_options
from api.settings import Settings
from data.errors import EmbeddingModelError
from qa.answerability import ARTIFACT_DIR, META_FILE, MODEL_FILE, model_key
from qa.index import load_index
from qa.service import AnswerService


def _calibrated_for(encoder, folder, threshold: float):
    """The shipped trees with a calibration for ``encoder`` (what `speechqa train` would write for it)."""
    folder.mkdir()
    shutil.copy(ARTIFACT_DIR / MODEL_FILE, folder / MODEL_FILE)
    meta = json.loads((ARTIFACT_DIR / META_FILE).read_text(encoding="utf-8"))
    meta.update(model_key=model_key(encoder.model_id), threshold=threshold)
    (folder / META_FILE).write_text(json.dumps(meta), encoding="utf-8")
    return folder


def test_a_model_calibrated_in_its_own_folder_serves_another_embedding_model(
    tmp_path, fake_index_dir, fake_encoder
):
    index = load_index(fake_index_dir, fake_encoder)
    with pytest.raises(EmbeddingModelError) as info:
        AnswerService(index, fake_encoder, composer="gated")  # the shipped calibration is for e5
    assert "SPEECHQA_ANSWERABILITY_DIR" in info.value.fix
    folder = _calibrated_for(fake_encoder, tmp_path / "calibration", threshold=0.42)
    for name in ("gated", "learned"):
        service = AnswerService(index, fake_encoder, composer=name, answerability_dir=folder)
        assert service.composer.threshold == 0.42  # type: ignore[attr-defined]


def test_the_folder_comes_from_the_environment_and_reaches_every_service(monkeypatch, tmp_path):
    monkeypatch.setenv("SPEECHQA_ANSWERABILITY_DIR", str(tmp_path / "mine"))
    settings = Settings(home=tmp_path)
    assert settings.answerability_dir == tmp_path / "mine"
    assert service_options(settings)["answerability_dir"] == tmp_path / "mine"
    monkeypatch.delenv("SPEECHQA_ANSWERABILITY_DIR")
    assert service_options(Settings(home=tmp_path))["answerability_dir"] is None


def test_speechqa_train_writes_to_that_folder_unless_told_otherwise(monkeypatch, tmp_path):
    from cli import main as cli_main

    written = []

    def fake_train(root, encoder, work, *, cache, out_dir, **kw):
        written.append(out_dir)
        return {"model_key": "k", "seconds": 0.0, "report": {}}

    monkeypatch.setattr("training.answerability.train", fake_train)
    monkeypatch.setattr(cli_main, "build_encoder", lambda settings, **kw: object())
    monkeypatch.setattr(cli_main, "open_cache", lambda settings: None)
    mine = tmp_path / "mine"
    assert cli_main.run_train(Settings(home=tmp_path, answerability_dir=mine), tmp_path, None, None) == 0
    assert cli_main.run_train(Settings(home=tmp_path), tmp_path, None, None) == 0
    assert (
        cli_main.run_train(Settings(home=tmp_path, answerability_dir=mine), tmp_path, tmp_path / "o", None)
        == 0
    )
    assert written == [mine, ARTIFACT_DIR, tmp_path / "o"]


def test_a_damaged_or_mismatched_model_folder_is_refused_at_start_with_what_to_do(tmp_path, fake_encoder):
    from data.files import sha256_file
    from qa.answerability import AnswerabilityModel

    folder = _calibrated_for(fake_encoder, tmp_path / "calibration", threshold=0.3)
    assert AnswerabilityModel.load(fake_encoder.model_id, folder).threshold == 0.3
    meta_path, model_path = folder / META_FILE, folder / MODEL_FILE
    meta = json.loads(meta_path.read_text(encoding="utf-8"))

    # Trees from another run than the thresholds (a training run stopped between the two files).
    model_path.write_text(model_path.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    with pytest.raises(EmbeddingModelError, match="does not match"):
        AnswerabilityModel.load(fake_encoder.model_id, folder)
    # Trees that are not a model at all, with a hash that matches them.
    model_path.write_bytes(b"\xff\xfe not a LightGBM model")
    meta_path.write_text(json.dumps({**meta, "model_sha256": sha256_file(model_path)}), encoding="utf-8")
    with pytest.raises(EmbeddingModelError, match="cannot read") as info:
        AnswerabilityModel.load(fake_encoder.model_id, folder)
    assert "speechqa train" in info.value.fix
    for broken in (b"{not json", b"[1, 2]", b"\xff\xfe"):
        meta_path.write_bytes(broken)
        with pytest.raises(EmbeddingModelError, match="unreadable"):
            AnswerabilityModel.load(fake_encoder.model_id, folder)


def test_the_shipped_meta_names_the_hash_of_the_shipped_trees():
    from data.files import sha256_file

    meta = json.loads((ARTIFACT_DIR / META_FILE).read_text(encoding="utf-8"))
    assert meta["model_sha256"] == sha256_file(ARTIFACT_DIR / MODEL_FILE)


def test_artifact_files_are_replaced_whole(tmp_path, monkeypatch):
    import os

    from data.files import write_atomically

    path = tmp_path / "meta.json"
    path.write_bytes(b"old")
    write_atomically(path, b"new")
    assert path.read_bytes() == b"new" and sorted(p.name for p in tmp_path.iterdir()) == ["meta.json"]

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        write_atomically(path, b"half")
    assert path.read_bytes() == b"new" and sorted(p.name for p in tmp_path.iterdir()) == ["meta.json"]


def test_speechqa_train_says_at_once_when_the_folder_cannot_take_the_model(monkeypatch, tmp_path, capsys):
    from cli import main as cli_main

    called = []
    monkeypatch.setattr("training.answerability.train", lambda *a, **kw: called.append(a))
    monkeypatch.setattr(cli_main, "build_encoder", lambda settings, **kw: called.append("encoder"))
    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    out = tmp_path / "a-file" / "model"
    code = cli_main.main(["train", "--benchmarks", str(tmp_path), "--out", str(out)])
    assert code == 1 and called == []  # nothing loaded or trained
    assert "a-file" in capsys.readouterr().err
