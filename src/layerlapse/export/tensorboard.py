"""A stored run for TensorBoard's embedding projector: `layerlapse export --tensorboard RUN [--epoch N]`, every
snapshot in one logdir (or one epoch).

The projector plugin (tensorboard/plugins/projector) reads projector_config.pbtxt in the folder given to
`tensorboard --logdir`, and the files it names relative to that folder. What it accepts, from its source
(tensorboard 2.21):

- the tensor is parsed as TSV text first and read as float32 binary only when the text does not decode as UTF-8, so
  a binary file that happens to be valid UTF-8 (all-zero activations are) would be misread. layerlapse writes TSV,
  each value to nine significant digits, which reads back as exactly the float32 of the stored float16;
- the metadata is TSV with a header row when it has more than one column; rows end at newlines, cells at tabs;
- the sprite is one PNG of at most 8192 × 8192 pixels holding thumbnails of single_image_dim, left to right and top
  to bottom, as many to a row as fit in its width;
- the page fetches at most 100,000 rows of the tensor and of the metadata.

TensorBoard is needed to view these files, not to write them: it is only a development dependency.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..store.atomic import atomic_output, write_bytes
from ..errors import ConfigError, ExportWarning, RunFolderError, not_recorded
from ..store import layout
from ..store.images import stored_pixels
from ..store.layout import epoch_file
from ..store.run import RunFolder

if TYPE_CHECKING:
    from PIL import Image

TENSOR_FILE = "tensor.tsv"
METADATA_FILE = "metadata.tsv"
SPRITE_FILE = "sprite.png"
CONFIG_FILE = "projector_config.pbtxt"  # the name the plugin looks for
SPRITE_MAX_PX = 8192  # the page refuses a larger sprite image, in either direction
PROJECTOR_MAX_POINTS = 100_000  # rows the page fetches (its num_rows)
MIN_THUMBNAIL_PX = 8  # smaller shows nothing recognisable; the bundled digits are 8 × 8 to begin with
PROBE_IMAGES = layout.PROBE_IMAGES
# Control characters (tab, newline, carriage return, ...) and Unicode's line and paragraph separators end a cell or a
# row in one TSV reader or another.
_CELL_BREAKERS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")



@dataclass(frozen=True)
class Embedding:
    """What projector_config.pbtxt says about one tensor: its name, (points, features), thumbnail (width, height) or
    None for no sprite, and its files relative to the config (the sprite is always SPRITE_FILE beside it)."""

    tensor_name: str
    tensor_shape: tuple[int, int]
    thumbnail: tuple[int, int] | None
    tensor_path: str = TENSOR_FILE
    metadata_path: str = METADATA_FILE


def export_tensorboard(run: RunFolder, out_dir: str | os.PathLike, *, epoch: int | None = None,
                       layer: str | None = None) -> Path:
    """Write what TensorBoard's projector reads for a stored run into `out_dir` and return that folder: the layer's
    activations (default: the run's first layer), a metadata row per probe image, the probe images as a sprite, and
    projector_config.pbtxt, last. With `epoch`, that one epoch (its files beside the config); without, every snapshot
    in the one folder (epoch_NNN/tensor.tsv and metadata.tsv, one sprite), chosen from the projector's tensor menu.
    View them with `tensorboard --logdir out_dir`.

    Parameters
    ----------
    run : RunFolder
        The run, from `load_run`; only read.
    out_dir : str or os.PathLike
        The folder to write into (made when missing).
    epoch : int, optional
        The one snapshot to export, 0 to the run's last complete epoch; None exports every snapshot.
    layer : str, optional
        A recorded layer; None: the run's first.

    Returns
    -------
    pathlib.Path
        `out_dir`, holding projector_config.pbtxt.

    Raises
    ------
    ConfigError
        `layer` was not recorded, or `epoch` is not a snapshot of the run.
    RunFolderError
        The run has no complete epoch.

    Examples
    --------
    The run of `run_experiment`'s example, its last snapshot:

    >>> from layerlapse import export_tensorboard, load_run
    >>> folder = export_tensorboard(load_run("runs/digits"), "runs/digits-tensorboard", epoch=2)
    >>> (folder / "projector_config.pbtxt").is_file()
    True
    """
    layer = _chosen_layer(run, layer)
    if epoch is not None:
        _check_epoch(run, epoch)
    epochs = [epoch] if epoch is not None else _every_epoch(run, layer)
    folder = Path(out_dir)
    embeddings = []
    for each in epochs:
        activations = _activations(run, layer, each)
        where = "" if epoch is not None else f"{epoch_file(each, '')}/"
        _write_tensor(activations, folder / f"{where}{TENSOR_FILE}")
        columns = metadata_columns(run, layer, each, len(activations))
        write_bytes(folder / f"{where}{METADATA_FILE}", metadata_tsv(columns).encode("utf-8"))
        embeddings.append(Embedding(_tensor_name(layer, each), (len(activations), activations.shape[1]), None,
                                    f"{where}{TENSOR_FILE}", f"{where}{METADATA_FILE}"))
    thumbnail = _write_sprite(run, embeddings[0].tensor_shape[0], folder / SPRITE_FILE)
    embeddings = [dataclasses.replace(embedding, thumbnail=thumbnail) for embedding in embeddings]
    # last, as the run's manifest: a config never names a file that is not whole yet
    write_bytes(folder / CONFIG_FILE, projector_config_text(embeddings).encode("utf-8"))
    return folder


def _every_epoch(run: RunFolder, layer: str) -> list[int]:
    """Every snapshot of the run, each checked to have the layer's activations before anything is written."""
    _check_epoch(run, 0)
    for epoch in range(run.epochs_complete + 1):
        if not run.has(layout.activations(layer, epoch)):
            _activations(run, layer, epoch)  # says which epochs have them
    return list(range(run.epochs_complete + 1))


# --- what to export -------------------------------------------------------------------------------------------------


def _chosen_layer(run: RunFolder, layer: str | None) -> str:
    if layer is None:
        return run.layers[0]
    if layer not in run.layers:
        raise not_recorded([layer], run.layers, run.path)
    return layer


def _check_epoch(run: RunFolder, epoch: int) -> None:
    last = run.epochs_complete
    if last < 0:
        raise RunFolderError(f"run folder {run.path} has no complete epoch to export: record one first "
                             "(`layerlapse run` with --resume continues an interrupted run)")
    if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or not 0 <= epoch <= last:
        raise ConfigError(f"epoch {epoch!r} is not in run folder {run.path}, which holds epochs 0 to {last}: "
                          "pass --epoch with one of those")


def _activations(run: RunFolder, layer: str, epoch: int) -> np.ndarray:
    """The layer's activations at `epoch` as float32 (points, features), checked for what the projector can show."""
    relpath = layout.activations(layer, epoch)
    if not run.has(relpath):
        recorded = [str(e) for e in range(run.epochs_complete + 1) if run.has(layout.activations(layer, e))]
        raise RunFolderError(f"run folder {run.path} has no activations of layer {layer!r} at epoch {epoch} "
                             f"({relpath}); it has them for epochs {', '.join(recorded) or 'none'}: pass --epoch "
                             "with one of those, or record the run again with --force")
    activations = run.read_array(relpath)
    activations = activations.reshape(len(activations), -1).astype(np.float32)
    if min(activations.shape) < 2:
        # the page silently leaves out a tensor with fewer than two rows or columns
        raise ConfigError(f"layer {layer!r} gives {activations.shape[0]} points of {activations.shape[1]} features "
                          "at this epoch; the projector shows only at least 2 of each: choose another layer")
    _warn_about_what_the_page_cannot_show(activations)
    return activations


def _warn_about_what_the_page_cannot_show(activations: np.ndarray) -> None:
    n_points = len(activations)
    not_finite = int((~np.isfinite(activations).all(axis=1)).sum())
    if not_finite:
        warnings.warn(f"{not_finite:,} of {n_points:,} points have NaN or infinite activations; the projector's PCA, "
                      "t-SNE and UMAP need finite values: export an epoch before the network diverged",
                      ExportWarning, stacklevel=4)
    if n_points > PROJECTOR_MAX_POINTS:
        warnings.warn(f"the projector page shows only the first {PROJECTOR_MAX_POINTS:,} of the {n_points:,} points "
                      "written", ExportWarning, stacklevel=4)


def _rows(run: RunFolder, relpath: str, n_points: int) -> np.ndarray:
    """An array with one row per probe image, or a one-line error naming the file that disagrees."""
    array = run.read_array(relpath)
    if len(array) != n_points:
        raise RunFolderError(f"run folder {run.path} is damaged: {relpath} has {len(array)} rows for {n_points} "
                             "probe images; record the run again with --force")
    return array


def _tensor_name(layer: str, epoch: int) -> str:
    # The page puts the name into its request URLs without escaping it, so only characters that need none.
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{layer}_{epoch_file(epoch, '')}")


# --- the tensor and the metadata ------------------------------------------------------------------------------------


def _write_tensor(activations: np.ndarray, path: Path) -> None:
    with atomic_output(path) as temporary:
        # nine significant digits: every float32 reads back exactly (and each stored float16 is one)
        np.savetxt(temporary, activations, fmt="%.9g", delimiter="\t")


def metadata_columns(run: RunFolder, layer: str, epoch: int, n_points: int) -> dict[str, list[str]]:
    """One column per field, a cell per probe image: its label and class, its text (where the run stored texts), the
    network's prediction at `epoch`, and layerlapse's own map of it (map_x, map_y), so the projector can colour and
    compare by any of them."""
    class_names = [str(name) for name in run.manifest["dataset"]["class_names"]]
    labels = _rows(run, layout.PROBE_LABELS, n_points)
    columns = {"label": [str(int(label)) for label in labels], "class": [class_names[label] for label in labels]}
    texts = run.probe_texts()
    if texts is not None:  # the projector shows a hovered point's text (tsv_cell keeps each on its row)
        columns["text"] = texts[:n_points]
    predictions = layout.predictions(epoch)
    if run.has(predictions):
        probabilities = _rows(run, predictions, n_points)
        predicted = probabilities.argmax(axis=1)
        columns["predicted"] = [class_names[index] for index in predicted]
        columns["confidence"] = _number_cells(probabilities.max(axis=1), "{:.4f}")
        columns["correct"] = ["yes" if right else "no" for right in predicted == labels]
    layerlapse_map = layout.map_file(layer, epoch)
    if run.has(layerlapse_map):
        xy = _rows(run, layerlapse_map, n_points)
        columns["map_x"] = _number_cells(xy[:, 0], "{:.6g}")
        columns["map_y"] = _number_cells(xy[:, 1], "{:.6g}")
    return columns


def _number_cells(values: np.ndarray, number_format: str) -> list[str]:
    # an empty cell is the page's "no value"; "nan" would turn the whole column from numbers into categories
    return [number_format.format(value) if math.isfinite(value) else "" for value in values.tolist()]


def tsv_cell(text: object) -> str:
    """`text` as one TSV cell: every character that would end the cell or the row becomes a space."""
    return _CELL_BREAKERS.sub(" ", str(text))


def metadata_tsv(columns: Mapping[str, Sequence[str]]) -> str:
    """The projector's metadata file: a header row of column names (only when there are several: a single column
    has none), then a row per point."""
    rows = [list(columns)] if len(columns) > 1 else []
    rows += zip(*columns.values())
    return "".join("\t".join(tsv_cell(cell) for cell in row) + "\n" for row in rows)


# --- the sprite -----------------------------------------------------------------------------------------------------


def sprite_thumbnail_size(n_points: int, image_size: tuple[int, int]) -> tuple[int, int] | None:
    """(width, height) of each thumbnail so that a square grid of `n_points` fits in SPRITE_MAX_PX: the images' own
    (height, width) `image_size` when it fits, else shrunk with its aspect kept; None when even MIN_THUMBNAIL_PX
    thumbnails cannot fit."""
    height, width = image_size
    longest = max(height, width)
    fitting = min(longest, SPRITE_MAX_PX // _grid_side(n_points))
    if fitting < min(MIN_THUMBNAIL_PX, longest):
        return None
    return max(1, width * fitting // longest), max(1, height * fitting // longest)


def _grid_side(n_points: int) -> int:
    return math.isqrt(n_points - 1) + 1  # ceil(sqrt(n)), exactly


def sprite_image(images: np.ndarray, thumbnail: tuple[int, int]) -> Image.Image:
    """The images (n, height, width) as thumbnails in a square grid, image i at row i // side, column i % side.
    Square, as TensorBoard's own examples are: the page's picking code takes its sprites per row from the sprites per
    column, which is harmless only when the two are equal."""
    from PIL import Image

    width, height = thumbnail
    if images.shape[1:] != (height, width):
        images = np.stack([np.asarray(Image.fromarray(image).resize(thumbnail, Image.Resampling.LANCZOS))
                           for image in images])
    side = _grid_side(len(images))
    cells = np.zeros((side * side, height, width), dtype=np.uint8)
    cells[:len(images)] = images
    sheet = cells.reshape(side, side, height, width).transpose(0, 2, 1, 3).reshape(side * height, side * width)
    return Image.fromarray(sheet)


def _write_sprite(run: RunFolder, n_points: int, path: Path) -> tuple[int, int] | None:
    """The probe images as the sprite; returns the thumbnail (width, height), or None and no sprite file when the run
    holds no images or they cannot fit."""
    if run.has(PROBE_IMAGES):
        stored = _rows(run, PROBE_IMAGES, n_points)
        images = stored_pixels(stored)  # the pixels the report shows of the same images
        thumbnail = _sprite_size_or_warning(stored, images, n_points)
        if thumbnail is not None:
            with atomic_output(path) as temporary:
                sprite_image(images, thumbnail).save(temporary, format="PNG")
            return thumbnail
    path.unlink(missing_ok=True)  # an earlier export's sprite would not belong to these points
    return None


def _sprite_size_or_warning(stored: np.ndarray, images: np.ndarray | None, n_points: int
                            ) -> tuple[int, int] | None:
    if images is None or images.ndim != 3:
        warnings.warn(f"no sprite: {PROBE_IMAGES} holds {stored.dtype} images of shape {stored.shape[1:]}, where the "
                      "sprite needs one channel, (height, width) or (height, width, 1): uint8 or floats in [0, 1]",
                      ExportWarning, stacklevel=4)
        return None
    thumbnail = sprite_thumbnail_size(n_points, images.shape[1:])
    if thumbnail is None:
        warnings.warn(f"no sprite: {n_points:,} thumbnails of {MIN_THUMBNAIL_PX} pixels or more do not fit in the "
                      f"projector's {SPRITE_MAX_PX} × {SPRITE_MAX_PX}-pixel sprite; every point is exported, without "
                      "its image", ExportWarning, stacklevel=4)
    return thumbnail


# --- the config -----------------------------------------------------------------------------------------------------


def projector_config_text(embeddings: Embedding | Sequence[Embedding]) -> str:
    """projector_config.pbtxt: through the plugin's own ProjectorConfig proto when TensorBoard is installed, else the
    same text written by hand."""
    embeddings = [embeddings] if isinstance(embeddings, Embedding) else list(embeddings)
    try:
        from google.protobuf import text_format
        from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig
    except ImportError:
        return "".join(_config_text_by_hand(embedding) for embedding in embeddings)
    config = ProjectorConfig()
    for embedding in embeddings:
        info = config.embeddings.add(tensor_name=embedding.tensor_name, tensor_path=embedding.tensor_path,
                                     metadata_path=embedding.metadata_path)
        info.tensor_shape.extend(embedding.tensor_shape)
        if embedding.thumbnail is not None:
            info.sprite.image_path = SPRITE_FILE
            info.sprite.single_image_dim.extend(embedding.thumbnail)
    return text_format.MessageToString(config)


def _config_text_by_hand(embedding: Embedding) -> str:
    # text_format's layout: fields in field-number order, two spaces a level. Every string is a file name above or a
    # _tensor_name, with no character that needs escaping.
    lines = ["embeddings {", f'  tensor_name: "{embedding.tensor_name}"',
             f'  metadata_path: "{embedding.metadata_path}"']
    lines += [f"  tensor_shape: {side}" for side in embedding.tensor_shape]
    if embedding.thumbnail is not None:
        lines += ["  sprite {", f'    image_path: "{SPRITE_FILE}"']
        lines += [f"    single_image_dim: {side}" for side in embedding.thumbnail]
        lines += ["  }"]
    lines += [f'  tensor_path: "{embedding.tensor_path}"', "}"]
    return "\n".join(lines) + "\n"
