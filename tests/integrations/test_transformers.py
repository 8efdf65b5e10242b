"""The Hugging Face `Trainer` callback, offline: a tiny ViT built from its config (no download) fine-tuned on the 8×8
digits with a real Trainer, recorded into a run folder the command line reads; step schedules, a resumed training,
the main process only, and the message for a module the model lacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate", reason="transformers' Trainer needs accelerate")

import torch  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from transformers import Trainer, TrainerCallback, TrainerControl, TrainerState, TrainingArguments  # noqa: E402
from transformers import ViTConfig, ViTForImageClassification  # noqa: E402

from layerlapse.errors import ConfigError, LayerNotFoundError  # noqa: E402
from layerlapse.integrations.transformers import LayerlapseCallback, logged_metrics  # noqa: E402

LAYERLAPSE = Path(sys.executable).parent / "layerlapse"
DIGITS = [str(digit) for digit in range(10)]
LAYER = "vit.layers.1"  # the second encoder block (transformers 5 names; 4.x has vit.encoder.layer.1)


class DigitImages(torch.utils.data.Dataset):
    """The digits as a transformers model takes them: dicts of pixel_values (1, 8, 8) and labels."""

    def __init__(self, rows: slice) -> None:
        data = load_digits()
        self.images = torch.tensor(data.images[rows] / 16, dtype=torch.float32)[:, None]
        self.labels = torch.tensor(data.target[rows])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"pixel_values": self.images[index], "labels": self.labels[index]}


def tiny_vit() -> ViTForImageClassification:
    torch.manual_seed(0)
    config = ViTConfig(image_size=8, patch_size=4, num_channels=1, hidden_size=32, num_hidden_layers=2,
                       num_attention_heads=2, intermediate_size=64, num_labels=10,
                       id2label={index: name for index, name in enumerate(DIGITS)})
    return ViTForImageClassification(config)


def arguments(output_dir: Path, **settings) -> TrainingArguments:
    defaults = dict(num_train_epochs=2, per_device_train_batch_size=32, learning_rate=3e-3, report_to=[],
                    use_cpu=True, save_strategy="no", eval_strategy="epoch", logging_strategy="epoch",
                    disable_tqdm=True, dataloader_num_workers=0)
    return TrainingArguments(output_dir=str(output_dir), **{**defaults, **settings})


def accuracy(prediction) -> dict[str, float]:
    return {"accuracy": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())}


def train(output_dir: Path, callbacks: list, train_rows: slice = slice(0, 600), **settings) -> Trainer:
    trainer = Trainer(model=tiny_vit(), args=arguments(output_dir, **settings), train_dataset=DigitImages(train_rows),
                      eval_dataset=DigitImages(slice(1200, 1400)), compute_metrics=accuracy, callbacks=callbacks)
    assert trainer.args.output_dir == str(output_dir)  # checkpoints and logs stay in the test's folder
    return trainer


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def layerlapse(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LAYERLAPSE), *map(str, args)], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def vit_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two epochs of a Trainer recorded and drawn: the second block's [CLS] token, the probe given as a Dataset."""
    folder = tmp_path_factory.mktemp("transformers")
    test = DigitImages(slice(1500, None))
    callback = LayerlapseCallback(LAYER, probe=DigitImages(slice(0, 200)), out=folder / "run", reduce="first",
                                  dataset="digits", test_set={"pixel_values": test.images, "labels": test.labels})
    train(folder / "trainer", [callback]).train()
    return folder / "run"


def test_a_trainer_records_a_complete_run_folder(vit_run: Path) -> None:
    recorded = manifest(vit_run)
    assert recorded["status"] == "complete" and recorded["epochs_complete"] == 2
    for relpath in ("lapse.gif", "report.html", "figures/curves.png", "figures/confusion.png",
                    *(f"frames/epoch_{epoch:03d}.png" for epoch in range(3))):
        assert (vit_run / relpath).is_file(), relpath
    assert np.load(vit_run / f"activations/{LAYER}/epoch_002.npy").shape == (200, 32)
    assert recorded["layer_info"][LAYER] == {"shape": [5, 32], "columns": 32, "reduction": "first",
                                             "caption": "first token", "output": "first tensor", "dtype": "float16"}
    assert recorded["dataset"]["class_names"] == DIGITS  # the model's id2label
    assert recorded["dataset"]["source"] == "transformers"
    # the Trainer's logs, as the history's metrics: its loss, and eval_accuracy as val_acc
    assert [row["epoch"] for row in recorded["history"]] == [1, 2]
    assert {"loss", "val_loss", "val_acc", "learning_rate"} <= set(recorded["history"][-1])
    assert recorded["training"]["batch_size"] == 32 and recorded["config"]["learning_rate"] == 0.003
    assert recorded["test"]["size"] == 297
    predictions = np.load(vit_run / "predictions/epoch_002.npy")  # the logits, softmaxed
    assert predictions.shape == (200, 10) and np.allclose(predictions.sum(axis=1), 1, atol=1e-5)


def test_the_command_line_reads_the_transformers_run(vit_run: Path) -> None:
    for args in (["render", vit_run], ["report", vit_run], ["export", "--tensorboard", vit_run, "--epoch", 1]):
        result = layerlapse(*args)
        assert result.returncode == 0, result.stderr
    assert (vit_run / "tensorboard" / "epoch_001" / "projector_config.pbtxt").is_file()


def test_every_n_steps_labels_the_snapshots_by_step(tmp_path: Path) -> None:
    data = DigitImages(slice(0, 100))
    callback = LayerlapseCallback(LAYER, probe={"pixel_values": data.images, "labels": data.labels},
                                  out=tmp_path / "run", reduce="mean", every=5, draw=False)
    train(tmp_path / "trainer", [callback], train_rows=slice(0, 320), logging_strategy="steps",
          logging_steps=5).train()  # 10 steps an epoch
    recorded = manifest(tmp_path / "run")
    assert recorded["snapshots"] == [{"step": 0, "epoch": 0}, {"step": 5, "epoch": 1}, {"step": 10, "epoch": 1},
                                     {"step": 15, "epoch": 2}, {"step": 20, "epoch": 2}]
    assert recorded["schedule"] == {"every": 5}
    assert "loss" in recorded["history"][-1]  # the loss logged at that step
    assert recorded["layer_info"][LAYER]["caption"] == "mean over tokens"


def test_the_last_snapshot_off_the_schedule_keeps_what_was_logged_at_the_end(tmp_path: Path) -> None:
    data = DigitImages(slice(0, 100))
    callback = LayerlapseCallback(LAYER, probe={"pixel_values": data.images, "labels": data.labels},
                                  out=tmp_path / "run", reduce="mean", every=3, draw=False)
    train(tmp_path / "trainer", [callback], train_rows=slice(0, 320)).train()  # 20 steps: 18 is the last due
    recorded = manifest(tmp_path / "run")
    assert recorded["snapshots"][-2:] == [{"step": 18, "epoch": 2}, {"step": 20, "epoch": 2}]
    assert {"loss", "val_acc"} <= set(recorded["history"][-1])  # the final epoch's logs, not an empty row


def test_a_resumed_training_continues_the_run_folder(tmp_path: Path) -> None:
    class Crash(TrainerCallback):
        def on_epoch_begin(self, args, state, control, **kwargs):
            if state.epoch >= 1:
                raise RuntimeError("the machine went down")

    probe = DigitImages(slice(0, 100))
    first = LayerlapseCallback(LAYER, probe=probe, out=tmp_path / "run", reduce="first", draw=False)
    with pytest.raises(RuntimeError, match="the machine went down"):
        train(tmp_path / "trainer", [first, Crash()], train_rows=slice(0, 320), save_strategy="epoch").train()
    first.close()
    assert manifest(tmp_path / "run")["status"] == "failed"
    assert manifest(tmp_path / "run")["epochs_complete"] == 1  # committed with the epoch's checkpoint

    again = LayerlapseCallback(LAYER, probe=probe, out=tmp_path / "run", reduce="first", draw=False)
    train(tmp_path / "trainer", [again], train_rows=slice(0, 320), save_strategy="epoch").train(
        resume_from_checkpoint=True)
    recorded = manifest(tmp_path / "run")
    assert recorded["epochs_complete"] == 2 and [row["epoch"] for row in recorded["history"]] == [1, 2]


def test_only_the_main_process_records(tmp_path: Path) -> None:
    callback = LayerlapseCallback(LAYER, probe=DigitImages(slice(0, 100)), out=tmp_path / "run")
    state = TrainerState(is_world_process_zero=False)
    args = arguments(tmp_path / "trainer")
    for event in ("on_train_begin", "on_epoch_begin", "on_epoch_end", "on_save", "on_train_end"):
        getattr(callback, event)(args, state, TrainerControl(), model=tiny_vit())
    assert not (tmp_path / "run").exists()


def test_a_module_the_model_lacks_is_named_with_close_matches(tmp_path: Path) -> None:
    callback = LayerlapseCallback("vit.encoder.layer.1", probe=DigitImages(slice(0, 100)), out=tmp_path / "run")
    with pytest.raises(LayerNotFoundError, match=r"^unknown layer 'vit.encoder.layer.1' \(did you mean "
                                                 r"'vit.layers.1'.*\): the model has \d+ layers; "
                                                 r"model\.named_modules\(\) lists them$") as caught:
        train(tmp_path / "trainer", [callback]).train()
    assert len(str(caught.value)) < 200
    assert not (tmp_path / "run").exists()


def tiny_bert() -> transformers.BertModel:
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=16)
    return transformers.BertModel(config)


def test_reduce_last_takes_each_text_s_last_real_token_by_its_attention_mask() -> None:
    from layerlapse.capture import Recorder

    model = tiny_bert()
    lengths = torch.tensor([3, 8, 1, 5, 6, 2])
    mask = (torch.arange(8) < lengths[:, None]).long()
    probe = {"input_ids": torch.randint(1, 50, (6, 8), generator=torch.Generator().manual_seed(0)) * mask,
             "attention_mask": mask}
    layer = "encoder.layer.1" if any(name == "encoder.layer.1" for name, _ in model.named_modules()) else "layers.1"
    with Recorder(model, [layer], probe, reduce="last", batch_size=4) as recorder:
        rows = recorder.snapshot(0).activations[layer]
        caption = recorder.layer_info()[layer]["caption"]
    with torch.no_grad():
        hidden = model.eval()(**probe).last_hidden_state  # the last block's output: the recorded layer's
    np.testing.assert_allclose(rows, hidden[torch.arange(6), lengths - 1].numpy(), atol=2e-3)
    assert caption == "last token (by attention mask)"


def test_labels_given_both_in_the_dict_and_as_labels_must_agree(tmp_path: Path) -> None:
    pixels, labels = torch.zeros(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])
    callback = LayerlapseCallback(LAYER, probe={"pixel_values": pixels, "labels": labels}, labels=labels,
                                  out=tmp_path / "run")
    assert "labels" not in callback.spec.probe  # the same labels: taken once, not passed to the model
    with pytest.raises(ConfigError, match=r"^labels= differs from the 'labels' entry of the dict it labels: give the "
                                          r"labels one way, in the dict or as labels=$"):
        LayerlapseCallback(LAYER, probe={"pixel_values": pixels, "labels": labels}, labels=labels.flip(0),
                           out=tmp_path / "run")


def test_logged_metrics_are_the_latest_of_each_without_timings() -> None:
    logs = [{"loss": 2.0, "epoch": 0.5, "step": 5}, {"loss": 1.5, "learning_rate": 1e-3, "epoch": 1.0},
            {"eval_loss": 1.2, "eval_accuracy": 0.7, "eval_runtime": 3.0, "eval_samples_per_second": 9.0},
            {"train_runtime": 20.0, "train_loss": 1.7, "total_flos": 1e9}]
    assert logged_metrics(logs) == {"loss": 1.5, "learning_rate": 1e-3, "val_loss": 1.2, "val_acc": 0.7}
