"""The `layerlapse` command: a thin layer over the public API. Heavy imports (torch, umap) happen inside commands."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
import typer.core

from .config import DATASETS, IMAGE_SIZES, MAP_BACKENDS, MAP_METHODS, REPORT_BUDGET_MB, RunConfig, parse_probe
from .errors import ConfigError, LayerlapseError


class _FlagsTakeNoValue:
    """--help shows no value for a flag (--help, --force, --quiet): it takes none. Typer 0.29 shows a flag's type,
    `--help <bool>`, as if it took one; an empty metavar shows nothing in every Typer."""

    def get_params(self, ctx: Any) -> list[Any]:  # click's Context: Typer 0.29 ships a click of its own
        params = super().get_params(ctx)
        for param in params:
            if getattr(param, "is_flag", False):
                param.metavar = ""
        return params


class _Group(_FlagsTakeNoValue, typer.core.TyperGroup):
    pass


class _Command(_FlagsTakeNoValue, typer.core.TyperCommand):
    pass


app = typer.Typer(cls=_Group, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="A time-lapse of a neural network's hidden representations while it learns.")

DataDir = Annotated[Optional[Path], typer.Option("--data-dir", help="Folder holding the dataset's IDX files "
                                                 "(else $LAYERLAPSE_DATA, then ~/.cache/layerlapse).")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or per-epoch lines.")]
MAP_HELP = (f"How to map each epoch to 2-D: {', '.join(MAP_METHODS)}. aligned (default) starts each epoch from the "
            "last one so points move only when the network's representation does; independent is the article's "
            "UMAP per epoch; aligned-umap is umap-learn's AlignedUMAP; pca is linear.")
# "\\[" keeps rich from reading "[torchdr]" as markup in --help
BACKEND_HELP = (f"What runs the aligned map: {', '.join(MAP_BACKENDS)}. auto is TorchDR where CUDA and TorchDR are "
                "present (pip install 'layerlapse\\[torchdr]'), umap-learn elsewhere (the faster one on CPU); the "
                "run records the choice, so a resumed run or a redraw keeps it.")


@app.command(cls=_Command)
def run(
    dataset: Annotated[str, typer.Option(help=f"One of {', '.join(DATASETS)}.")] = "mnist",
    epochs: Annotated[int, typer.Option(help="Training epochs (a frame before training and after each).")] = 15,
    layer: Annotated[list[str], typer.Option(help="Layer to record; repeat for several. See `layerlapse layers`.")]
    = ["hidden"],  # noqa: B006 - typer reads the default, nothing mutates it
    out: Annotated[Path, typer.Option(help="Run folder to write.")] = Path("runs/mnist"),
    probe: Annotated[str, typer.Option(help="Training images recorded each epoch (stratified), or 'all'.")]
    = "10000",
    test_probe: Annotated[str, typer.Option(help="Test images recorded each epoch and placed on every frame "
                                            "(stratified), 'all', or 0 for none.")] = "1000",
    seed: Annotated[int, typer.Option(help="Seed for the split, shuffles, dropout and UMAP.")] = 0,
    data_seed: Annotated[int, typer.Option(help="Seed that chooses the probe, test probe and --subset: the same "
                                           "for runs you will compare (layerlapse compare).")] = 0,
    neighbors: Annotated[int, typer.Option(help="UMAP's n_neighbors.")] = 40,
    map_method: Annotated[str, typer.Option("--map", help=MAP_HELP)] = "aligned",
    map_backend: Annotated[str, typer.Option("--map-backend", help=BACKEND_HELP)] = "auto",
    device: Annotated[str, typer.Option(help="auto (CUDA when present), cpu or cuda.")] = "auto",
    subset: Annotated[Optional[int], typer.Option(help="Train on a stratified subset of this many images.")]
    = None,
    data_dir: DataDir = None,
    resume: Annotated[bool, typer.Option(help="Continue the interrupted run in --out from its last epoch.")] = False,
    force: Annotated[bool, typer.Option(help="Replace the run already in --out.")] = False,
    quiet: Quiet = False,
) -> None:
    """Train the reference CNN, record LAYER every epoch, map it with UMAP and draw the time-lapse."""
    from .reference.experiment import run_experiment

    if resume and force:
        raise LayerlapseError("--resume and --force contradict each other: pass one of them")
    config = RunConfig(dataset=dataset, epochs=epochs, layers=tuple(layer), probe=parse_probe(probe),
                       test_probe=parse_probe(test_probe, "--test-probe"), seed=seed,
                       data_seed=data_seed, n_neighbors=neighbors, map_method=map_method, map_backend=map_backend, device=device,
                       train_subset=subset)
    with _report_warnings_as_lines():
        finished = run_experiment(config, out, data_dir=_as_str(data_dir), force=force, resume=resume,
                                  show_progress=not quiet)
    _say_written(finished, quiet)


@app.command(cls=_Command)
def demo(
    out: Annotated[Optional[Path], typer.Option(help="Run folder to write (replaced if it holds an earlier run); "
                                                "default runs/demo, or runs/text with --text.")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Training epochs; default 15, or 6 of fine-tuning with "
                                                  "--text.")] = None,
    map_method: Annotated[str, typer.Option("--map", help=MAP_HELP)] = "aligned",
    text: Annotated[bool, typer.Option("--text", help="A small BERT-style encoder pre-trained on Debian's fortunes, "
                                       "then fine-tuned by a Hugging Face Trainer to tell six of their topics apart "
                                       "(sudo apt-get install fortunes; pip install 'layerlapse\\[transformers]'); its "
                                       "tokens in a second run beside it, OUT-tokens.")] = False,
    quiet: Quiet = False,
) -> None:
    """The whole pipeline offline in a few minutes, on scikit-learn's bundled 8×8 digits, or with --text on
    quotations."""
    if text:
        # the text demo imports transformers: reached here only, when asked for (pyproject.toml's import rules)
        from .textdemo.demo import run_text_demo, tokens_folder
        from .textdemo.settings import TextDemoSettings

        config = RunConfig(map_method=map_method)
        settings = TextDemoSettings() if epochs is None else TextDemoSettings(epochs=epochs)
        out = out or Path("runs/text")
        with _report_warnings_as_lines():
            finished = run_text_demo(out, settings=settings, config=config, show_progress=not quiet)
        _say_written(finished, quiet)
        if not quiet and (tokens_folder(out) / "report.html").is_file():
            typer.echo(f"and the tokens of some quotations, one point each: {tokens_folder(out)}/report.html")
        return
    from .reference.experiment import run_experiment

    config = RunConfig(dataset="digits", epochs=15 if epochs is None else epochs, probe=None, map_method=map_method)
    with _report_warnings_as_lines():
        finished = run_experiment(config, out or Path("runs/demo"), force=True, show_progress=not quiet)
    _say_written(finished, quiet)


@app.command(cls=_Command)
def render(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `layerlapse run` or `demo`.")],
    map_method: Annotated[Optional[str], typer.Option("--map", help=MAP_HELP + " Default: the run's own; another "
                                                      "method maps every epoch again.")] = None,
    measure_sample: Annotated[Optional[int], typer.Option(help="Probe images the layer measures (k-NN, linear "
                                                          "probe, CKA) use; default 2,000.")] = None,
    quiet: Quiet = False,
) -> None:
    """Redraw every picture of a stored run (mapping epochs that have no map yet), without training."""
    from .recipe.mapping import map_run
    from .recipe.steps import render_run
    from .store.run import load_run

    if map_method is not None:
        RunConfig(map_method=map_method)  # the one-line error for an unknown name, before the run is opened
    stored = load_run(run_dir)
    if measure_sample is not None:  # before anything is mapped or drawn
        from .measures.layers import check_sample_size

        check_sample_size(measure_sample, len(stored.probe_labels()))
    with _report_warnings_as_lines():
        map_run(stored, method=map_method, show_progress=not quiet)
        written = render_run(stored, show_progress=not quiet, measure_sample=measure_sample)
    if not quiet:
        typer.echo(f"redrew {len(written)} files in {run_dir}")


@app.command(cls=_Command)
def layers(
    dataset: Annotated[str, typer.Option(help="Sets the input size: 28×28 for MNIST, 8×8 for digits.")] = "mnist",
    model: Annotated[Optional[str], typer.Option(
        help="Your own model instead of the reference network: package.module:factory (a function or class called "
             "with no arguments, or a model object), imported from the current folder or the installed packages.",
    )] = None,
    input_shape: Annotated[Optional[str], typer.Option(
        help="The shape of one input to your model, such as 1,28,28 or 784, or 16 for 16 tokens: gives each "
             "layer's output shape.",
    )] = None,
    input_dtype: Annotated[str, typer.Option(
        help="What the input holds: float, long (integer token ids), or auto: floats, and token ids for a model "
             "that starts with an Embedding or refuses floats for not being Long or Int.",
    )] = "auto",
    input_name: Annotated[Optional[list[str]], typer.Option(
        help="Pass the input by keyword, as Hugging Face models take it; repeat for several, each of "
             "--input-shape: --input-name input_ids --input-name attention_mask. A name ending in ids or mask "
             "is integer, a mask all ones.",
    )] = None,
) -> None:
    """List a network's named layers (names for --layer, or for Recorder(layers=...)) with their output shapes.

    Your own models: an image model, a text model of 16 token ids, a Hugging Face model by keyword:
    layerlapse layers --model mymodels:cnn --input-shape 1,28,28
    layerlapse layers --model mymodels:lstm --input-shape 16
    layerlapse layers --model mymodels:bert --input-shape 16 --input-name input_ids --input-name attention_mask
    """
    from .capture import layer_table

    if model is None:
        RunConfig(dataset=dataset)  # validates the name
        from .reference.models import build_model

        height, width = IMAGE_SIZES[dataset]
        network, shape = build_model((height, width), 10), (1, height, width)
    else:
        from .capture.listing import load_model

        network, shape = load_model(model), _parse_shape(input_shape)
    rows = layer_table(network, shape, dtype=input_dtype, keywords=input_name or ())
    width = max([len("layer"), *(len(name) for name, _, _ in rows)])
    typer.echo(f"{'layer':<{width}} {'type':<20} output per {'image' if model is None else 'input'}")
    # without a shape nothing runs; with one, a module the pass never called (a ModuleList) has no output
    missing = "(give --input-shape)" if shape is None else "(not called)"
    for name, kind, out_shape in rows:
        shown = " × ".join(map(str, out_shape)) if out_shape is not None else missing
        typer.echo(f"{name:<{width}} {kind:<20} {shown}")


def _parse_shape(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    parts = [part.strip() for part in re.split(r"[,×x]", text)]
    shape = tuple(int(part) for part in parts) if all(part.isdigit() for part in parts) else ()
    if not shape or min(shape) < 1:
        raise ConfigError(f"--input-shape must be whole numbers separated by commas, such as 1,28,28; got {text!r}")
    return shape


@app.command(cls=_Command)
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `layerlapse run` or `demo`.")],
    out: Annotated[Optional[Path], typer.Option(help="File to write (default: RUN_DIR/report.html).")] = None,
    budget: Annotated[float, typer.Option(help="Size budget in MB; above it the page shows a stratified "
                                          "subsample of the points and says so.")] = REPORT_BUDGET_MB,
    layer: Annotated[Optional[list[str]], typer.Option(help="Recorded layer the page can show; repeat for several "
                                                       "(default: every recorded layer).")] = None,
    quiet: Quiet = False,
) -> None:
    """Write the run's interactive report.html from the stored run, without training or torch.

    One offline file: the map with its slider, hover, trails, curves and confusion matrix."""
    from .recipe.steps import write_run_report
    from .store.run import load_run

    stored = load_run(run_dir)
    with _warnings_as_lines():
        path = write_run_report(stored, out, size_budget_mb=budget, layers=layer or None)
    if not quiet:
        typer.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB): open it in any browser, offline")


@app.command(cls=_Command)
def compare(
    run_dirs: Annotated[list[Path], typer.Argument(metavar="RUN", help="Two run folders or more, recorded on "
                                                   "the same probe; the others' maps are turned onto the first's.")],
    out: Annotated[Path, typer.Option(help="Comparison folder to write (not inside a run folder).")]
    = Path("runs/compare"),
    name: Annotated[Optional[list[str]], typer.Option(help="What to call each run on the page, in order (default "
                                                      "A, B, ...); repeat once per run.")] = None,
    budget: Annotated[float, typer.Option(help="Size budget of report.html in MB, as `layerlapse report`'s.")]
    = REPORT_BUDGET_MB,
    neighbour_items: Annotated[int, typer.Option(help="Items among which each item's 10 nearest neighbours are "
                                                 "found, a seeded sample beyond: exact, its time grows with the "
                                                 "square of this.")] = 10_000,
    force: Annotated[bool, typer.Option(help="Replace the comparison already in --out.")] = False,
    quiet: Quiet = False,
) -> None:
    """Compare runs (seeds, architectures, settings) over the whole of training: one page, the runs side by side.

    Joins the runs on their probe items and matches their snapshots, then measures what differs: CKA between their
    layers, each item's nearest-neighbour overlap, prediction agreement, when each learned what. The runs are only
    read; without training or torch."""
    from .comparison.writing import compare as compare_runs

    with _warnings_as_lines():
        folder = compare_runs(run_dirs, out, names=name or None, force=force, size_budget_mb=budget,
                              neighbour_items=neighbour_items, show_progress=not quiet)
    if not quiet:
        typer.echo(f"wrote {folder}/report.html: open it in any browser, offline")
        typer.echo("beside it: figures/, measures.json (every measure) and items.npz (per item)")


@app.command(cls=_Command)
def watch(
    run_dir: Annotated[Path, typer.Argument(help="The run folder to watch: a run recording, finished, or not started "
                                            "yet (then the page waits for it).")],
    port: Annotated[int, typer.Option(help="Port to listen on; 0 picks a free one.")] = 8765,
    host: Annotated[str, typer.Option(help="Address to listen on. Another than 127.0.0.1 makes the page reachable "
                                      "from other machines, so every request then needs the token.")] = "127.0.0.1",
    token: Annotated[Optional[str], typer.Option(help="The token the page's address carries (default: none on "
                                                 "127.0.0.1, a new random one on any other --host).")] = None,
    budget: Annotated[float, typer.Option(help="Size budget of each page in MB, as `layerlapse report`'s.")]
    = REPORT_BUDGET_MB,
    nice: Annotated[int, typer.Option(help="How much lower than normal the server's priority is (0-19; 0: as high "
                                      "as the training's): on a busy machine the training comes first.")] = 10,
) -> None:
    """Serve the run's report page live: each snapshot appears as the run commits it, without a reload.

    Read-only: it never writes to the run or takes its lock. Ctrl-C stops it."""
    from .watch.server import WatchServer, settings_for

    server = WatchServer(settings_for(run_dir, host, port, token, size_budget_mb=budget))
    typer.echo(f"watching {run_dir} at {server.url}", color=False)
    typer.echo("open it in a browser; Ctrl-C stops the server (the run goes on)", err=True)
    if not 0 <= nice <= 19:
        raise ConfigError(f"--nice must be between 0 and 19, got {nice}")
    with contextlib.suppress(OSError):
        os.nice(nice)  # a watcher gives way to the training it watches on a busy machine
    from ._util.threads import limit_worker_threads

    # one thread for its numpy and scikit-learn, as the mapping worker: a second process's threads on a training
    # run's cores slow its OpenMP threads, which meet at every operator (_util/threads.py)
    limit_worker_threads()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        typer.echo(f"stopped watching {run_dir}", err=True)


@app.command(cls=_Command)
def export(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `layerlapse run` or `demo`.")],
    tensorboard: Annotated[bool, typer.Option("--tensorboard", help="Write the files of TensorBoard's embedding "
                                              "projector: every snapshot in one logdir, or one --epoch.")] = False,
    parquet: Annotated[bool, typer.Option("--parquet", help="Write one Parquet table per layer: every probe image at "
                                          "every snapshot with its map position, prediction and dynamics (pandas, "
                                          "DuckDB, Embedding Atlas, DataMapPlot read it).")] = False,
    epoch: Annotated[Optional[int], typer.Option(help="One epoch to export for TensorBoard (0 is before "
                                                 "training; default: every snapshot).")] = None,
    layer: Annotated[Optional[str], typer.Option(help="Recorded layer to export (default: TensorBoard the run's "
                                                 "first, Parquet every one).")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Folder to write (default: RUN_DIR/tensorboard/LAYER or "
                                                "/epoch_NNN, RUN_DIR/tables).")] = None,
) -> None:
    """Export a stored run for another tool: TensorBoard's projector or Parquet tables.

    TensorBoard: every snapshot in one logdir, or one epoch; Parquet: every snapshot."""
    import shlex

    from .errors import ExportWarning
    from .export.tensorboard import export_tensorboard
    from .store import layout
    from .store.run import load_run

    if tensorboard == parquet:
        raise LayerlapseError("say which format to export: --tensorboard (TensorBoard's embedding projector) or "
                              "--parquet (a table per layer), one at a time")
    stored = load_run(run_dir)
    with _warnings_as_lines(ExportWarning), contextlib.ExitStack() as inside:
        if out is None:  # into the run folder: as its writer, and never through a link out of it
            inside.enter_context(stored.writing())
        if parquet:
            from .export.parquet import write_parquet

            folder = out if out is not None else stored.local(layout.TABLES)
            written = write_parquet(stored, folder, layers=None if layer is None else [layer])
            typer.echo(f"wrote {', '.join(path.name for path in written)} to {folder}")
            return
        shown = layer or stored.layers[0]
        folder = out if out is not None else stored.local(layout.tensorboard(epoch, shown))
        export_tensorboard(stored, folder, epoch=epoch, layer=layer)
    when = "every snapshot" if epoch is None else f"epoch {epoch}"
    typer.echo(f"wrote the projector files of layer {shown} at {when} to {folder}")
    typer.echo(f"view them: tensorboard --logdir {shlex.quote(str(folder))}")


@app.command(cls=_Command)
def dynamics(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `layerlapse run`, `demo` or your own loop.")],
    top: Annotated[int, typer.Option(help="How many images (and snapshots) each list shows.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print everything as JSON, for scripts.")] = False,
) -> None:
    """What each probe image went through, and when each layer changed most; reads the stored run.

    The hardest, most forgotten and latest-learned images over the trained snapshots (dataset cartography's
    confidence, forgetting events), and the snapshots where each layer changed most. Trains nothing."""
    import json

    from .measures.dynamics import summary
    from .store.run import load_run

    if top < 1:
        raise ConfigError(f"--top must be at least 1, got {top}")
    found = summary(load_run(run_dir), top=top)
    if as_json:
        typer.echo(json.dumps(found, indent=1))
        return
    _print_dynamics(found)


DYNAMICS_LISTS = {"hardest": "hardest (lowest mean probability of the true class)",
                  "most_forgotten": "most forgotten (right → wrong between snapshots)",
                  "latest_learned": "latest learned (right from this snapshot on)"}
DYNAMICS_TEXT_CHARS = 120  # of an item's text in `layerlapse dynamics`'s tables: a line or two


def _shortened(text: str) -> str:
    text = " ".join(text.split())  # one paragraph: the table's rows stay rows
    return text if len(text) <= DYNAMICS_TEXT_CHARS else text[:DYNAMICS_TEXT_CHARS - 1] + "…"


def _print_dynamics(found: dict) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(highlight=False)
    first, last = found["snapshots"][0], found["snapshots"][-1]
    texts = any("text" in row for key in DYNAMICS_LISTS for row in found[key])
    items = "items" if texts else "images"
    console.print("conf. = mean probability of the true class, var. = its standard deviation, right = share of "
                  "snapshots right, forgot = right → wrong transitions, from = the snapshot it stayed right from")
    console.print(f"{found['images']:,} probe {items} over trained snapshots {first}–{last}: "
                  f"{found['never_learned']:,} never learned, {found['forgotten_at_least_once']:,} forgotten at least "
                  f"once, {found['unforgettable']:,} learned and never forgotten")
    for key, title in DYNAMICS_LISTS.items():
        table = Table(title=title, title_justify="left")
        # short headings: the table fits an 80-column terminal
        for column in (items[:-1], "label", "pred.", "conf.", "var.", "right", "forgot", "from", *(("text",) * texts)):
            table.add_column(column, justify="left" if column in ("label", "pred.", "text") else "right",
                             overflow="fold" if column == "text" else "ellipsis")
        for row in found[key]:
            # Text, never markup: a quotation's "[red]" or a class named "[b]" is printed as it is
            table.add_row(str(row["index"]), Text(row["label"]), Text(row["predicted"]), f"{row['confidence']:.3f}",
                          f"{row['variability']:.3f}", f"{row['correctness']:.0%}", str(row["forgetting_events"]),
                          "never" if row["learned_from"] < 0 else str(row["learned_from"]),
                          *((Text(_shortened(row.get("text", ""))),) * texts))
        console.print(table)
    for layer, row in found["layer_accuracy"].items():
        if row["knn_accuracy"] is not None:
            console.print(f"layer {layer} at {row['title']}: k-NN accuracy {row['knn_accuracy']:.3f} (k = "
                          f"{row['knn_k']}), linear probe {row['linear_probe_accuracy']:.3f}, on "
                          f"{row['sample_size']:,} sampled images")
    for layer, rows in found["largest_change"].items():
        if rows:
            changes = ", ".join(f"{row['title']} (1 − CKA {row['cka_change']:.3f}"
                                + ("" if row["neighbors_kept"] is None else f", 10-NN kept {row['neighbors_kept']:.2f}")
                                + ")" for row in rows)
            console.print(f"layer {layer}: largest change from the snapshot before: {changes}")


def _say_written(run_folder, quiet: bool) -> None:
    """The run's last words: the test accuracy, then the report first (the one file to open), then the rest."""
    if quiet:
        return
    test = run_folder.manifest["test"]
    if test:
        typer.echo(f"test accuracy {test['accuracy']:.4f}")
    typer.echo(f"wrote {run_folder.path}/report.html: open it in any browser, offline")
    typer.echo("beside it: lapse.gif, lapse.mp4, frames/, figures/ and metrics.json")


@contextlib.contextmanager
def _warnings_as_lines(category: type[Warning] = UserWarning) -> Iterator[None]:
    """Warnings of `category` printed as one line each on stderr when they happen, like the errors, rather than
    Python's file:line and source line; other warnings as Python shows them."""
    with warnings.catch_warnings():  # restores the filters and showwarning afterwards
        warnings.simplefilter("always", category)
        python_shows = warnings.showwarning

        def show(message, warning_category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
            if issubclass(warning_category, category):
                typer.echo(f"warning: {message}", err=True)
            else:  # not ours to reword
                python_shows(message, warning_category, filename, lineno, file, line)

        warnings.showwarning = show
        yield


def _report_warnings_as_lines() -> contextlib.AbstractContextManager[None]:
    """A report over its size budget, from run, demo or render, said in one line as `layerlapse report` says it."""
    from .errors import ReportSizeWarning

    return _warnings_as_lines(ReportSizeWarning)


def _as_str(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _quiet_resource_tracker() -> None:
    """multiprocessing's resource tracker, a process of its own started with this environment, warns at exit of
    semaphores a failed run's worker queues left; it removes them itself, so the warning tells the user nothing
    they can act on, under the one line that does."""
    quiet = "ignore::UserWarning:multiprocessing.resource_tracker"
    current = os.environ.get("PYTHONWARNINGS", "")
    if quiet not in current:
        os.environ["PYTHONWARNINGS"] = f"{current},{quiet}" if current else quiet


INTERRUPT_AGAIN_S = 0.05  # a finalizer returns within microseconds; the interrupt must land after it


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _install_interrupts() -> None:
    """SIGTERM ends a run as Ctrl-C does, and neither is lost: Python raises a signal's KeyboardInterrupt wherever
    the main thread is, and when that is a finalizer (a memory-mapped snapshot let go, a GC callback) it prints
    "Exception ignored" and goes on, so a killed run finished as if nothing had been asked (seen in CI). Such an
    interrupt is raised again once the finalizer has returned: a moment later, from a thread, since raised in the
    hook itself it would be swallowed there too."""
    import _thread
    import threading

    signal.signal(signal.SIGTERM, _interrupt)
    shown = sys.unraisablehook

    def raise_again(unraisable: Any) -> None:
        if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
            # as SIGTERM, whose handler is this module's: SIGINT is ignored in a job started in the background
            threading.Timer(INTERRUPT_AGAIN_S, _thread.interrupt_main, args=(signal.SIGTERM,)).start()
            return
        shown(unraisable)

    sys.unraisablehook = raise_again


def main() -> None:
    """Entry point: one line and exit code 2 for problems the user can fix; SIGTERM ends a run like Ctrl-C."""
    _install_interrupts()
    _quiet_resource_tracker()
    try:
        returned = app(standalone_mode=False)
    except LayerlapseError as error:
        typer.echo(f"error: {error}", err=True)
        sys.exit(2)
    except (KeyboardInterrupt, typer.Abort):
        _interrupted()
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except OSError as error:  # the disk refused something no layerlapse code expected to fail: still one line
        typer.echo(f"error: {_os_error_line(error)}", err=True)
        sys.exit(2)
    except Exception as error:
        # click's usage errors; typer may ship its own copy of click, so recognise them by what they offer
        show, code = getattr(error, "show", None), getattr(error, "exit_code", None)
        if callable(show) and isinstance(code, int):
            show()
            sys.exit(code)
        raise
    if returned == 130:  # typer turns a KeyboardInterrupt inside a command into this exit code
        _interrupted()


def _os_error_line(error: OSError) -> str:
    from .store.atomic import storage_error

    storage = storage_error(error, Path(error.filename)) if error.filename else None
    if storage is not None:
        return str(storage)
    return f"{error.filename or 'a file'} cannot be used ({error.strerror or error}): check the disk and try again"


def _interrupted() -> None:
    typer.echo("interrupted: continue the run with the same command and --resume", err=True)
    sys.exit(130)
