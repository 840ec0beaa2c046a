"""`qmp data`: write Qlib data directories (synthetic or from CSV files) and validate them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from deployments.cli.console import console, err_console

data_app = typer.Typer(help="Write and check Qlib data directories.", no_args_is_help=True)


@contextmanager
def _progress(description: str) -> Iterator[Callable[[int, int], None]]:
    """A Rich progress bar driven by ``(done, total)`` callbacks."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


@data_app.command("synth")
def synth(
    directory: Path | None = typer.Argument(None, help="Data directory (same as --out)."),
    out: Path | None = typer.Option(None, "--out", help="Data directory to write (use as provider_uri)."),
    instruments: int = typer.Option(60, min=2, max=5000, help="Number of stocks."),
    start: str | None = typer.Option(
        None, help="First calendar day (YYYY-MM-DD). [default: 2021-01-01; with --end, covers the shipped example YAMLs]"
    ),
    end: str | None = typer.Option(None, help="Last calendar day (YYYY-MM-DD). [default: 2022-12-31]"),
    seed: int = typer.Option(0, help="Random seed; the same seed writes identical files."),
    benchmark: str = typer.Option("SH000300", help="Symbol of the benchmark index series."),
    universe: str = typer.Option("csi300", help="Name of the index universe (besides 'all')."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace Qlib data already in --out."),
    append_until: str | None = typer.Option(
        None,
        "--append-until",
        help="Extend an existing synthetic directory with trading days up to this date "
        "(YYYY-MM-DD); existing bytes stay unchanged.",
    ),
    alpha_strength: float = typer.Option(
        1.0, help="Strength of the planted alpha (-1 flips its sign: a regime change for appended days)."
    ),
    feed: Path | None = typer.Option(
        None, "--feed", help="With --append-until: write the new days to this .csv/.parquet table (a source for "
        "`qmp data ingest`) instead of appending them; DIR stays unchanged."
    ),
) -> None:
    """Synthesize daily stock data with a planted, learnable alpha in Qlib's binary format."""
    from tasks.core.data.synthetic import DEFAULT_END, DEFAULT_START, synthesize
    from tasks.core.errors import PipelineInputError

    if (directory is None) == (out is None):
        raise PipelineInputError("give the data directory once: DIR or --out DIR")
    out = directory or out
    assert out is not None
    if feed is not None:
        from tasks.core.data.synthetic_feed import write_synthetic_feed

        if append_until is None:
            raise PipelineInputError("--feed needs --append-until DATE (the last day of the feed)")
        rows = write_synthetic_feed(out, append_until, seed, feed, benchmark=benchmark, alpha_strength=alpha_strength)
        console.print(f"wrote {rows} rows of the synthetic days after {out}'s end up to {append_until} to {feed}")
        return
    if append_until is not None:
        _append_synthetic(out, append_until, seed, benchmark, alpha_strength)
        return
    with _progress("writing instruments") as progress:
        report = synthesize(
            out, instruments, start or DEFAULT_START, end or DEFAULT_END, seed, benchmark=benchmark, universe=universe,
            alpha_strength=alpha_strength, overwrite=overwrite, progress=progress,
        )  # fmt: skip
    console.print(
        f"wrote {report.instruments} instruments x {report.days} days ({report.start}..{report.end}) to "
        f"{report.out}: universes all, {report.universe}; benchmark {report.benchmark}; "
        f"{report.holidays} holidays, {report.suspended_days} suspended days, "
        f"{report.late_listings} late listings, {report.delistings} delistings"
    )


def _append_synthetic(out: Path, until: str, seed: int, benchmark: str, alpha_strength: float) -> None:
    """The new synthetic days ingested into ``out`` (as `qmp data ingest` does: recorded, announced)."""
    from registry.settings import load_settings
    from tasks.core.data.ingest.record import data_dir_key
    from tasks.core.data.synthetic import append_synthetic
    from tasks.core.lifecycle import open_registry
    from tasks.events import emit_data_updated

    added = append_synthetic(out, until, seed, benchmark=benchmark, alpha_strength=alpha_strength,
                             registry=lambda: open_registry(load_settings()))
    console.print(
        f"appended {added.days} trading days ({added.start}..{added.end}) for {added.instruments} "
        f"instruments to {added.out}"
    )
    if added.record_id is not None and added.data_version is not None:
        console.print(f"data version {added.data_version} (record {added.record_id})")
        emit_data_updated(data_dir_key(out), added.end, added.data_version, added.days)


@data_app.command("import-csv")
def import_csv_command(
    src_dir: Path = typer.Argument(
        ..., help="Folder of <SYMBOL>.csv files: date,open,high,low,close,volume[,vwap,factor]."
    ),
    out: Path = typer.Option(..., "--out", help="Data directory to write (use as provider_uri)."),
    universe: list[str] = typer.Option(["csi300"], help="Universe names besides 'all' (repeatable)."),
    benchmark: str = typer.Option(
        "SH000300", help="Symbol whose CSV is the benchmark (kept out of universes)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace Qlib data already in --out."),
    append: bool = typer.Option(
        False, "--append", help="Add the rows after --out's last day; stored history stays unchanged."
    ),
) -> None:
    """Convert per-instrument CSV files into a Qlib data directory."""
    from tasks.core.data.csv_import import import_csv

    with _progress("writing instruments") as progress:
        report = import_csv(
            src_dir, out, universes=universe, benchmark=benchmark, overwrite=overwrite, append=append,
            progress=progress,
        )  # fmt: skip
    for warning in report.warnings:
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    console.print(
        f"wrote {report.instruments} instruments, {report.rows} rows over {report.days} days "
        f"({report.start}..{report.end}) to {report.out}: universes {', '.join(report.universes)}; "
        f"benchmark {report.benchmark or 'none'}"
    )


@data_app.command("validate")
def validate(
    data_dir: Path = typer.Argument(..., help="Qlib data directory."),
    benchmark: str | None = typer.Option(None, help="Also check this benchmark's series."),
) -> None:
    """Check a data directory against Qlib's silent failure modes."""
    from tasks.core.data.qlib_binary import validate_qlib_dir

    validate_qlib_dir(data_dir, benchmark=benchmark)
    console.print(f"{data_dir}: valid Qlib data directory")


@data_app.command("ingest")
def ingest_command(
    source: str = typer.Argument(
        ..., help="A folder of per-instrument CSV/Parquet files, one long CSV/Parquet table, or a SQLAlchemy URL."
    ),
    into: Path = typer.Option(..., "--into", help="Qlib data directory to add the new days to (created if new)."),
    query: str | None = typer.Option(
        None, help="SQL for a database SOURCE; ':after' is bound to the directory's last day."
    ),
    region: str = typer.Option("cn", help="Region: its exchange's calendar and price limits (cn, us)."),
    calendar: str | None = typer.Option(
        None, help="Trading calendar: an exchange code (XSHG, XNYS, ...) or 'synthetic' (the source's own days). "
        "[default: the one DIR declares, else the region's exchange]"
    ),
    holidays: Path | None = typer.Option(
        None, help="Holiday file for the years past exchange_calendars' last session (see docs/ingest.md)."
    ),
    allow_missing_days: bool = typer.Option(
        False, "--allow-missing-days", help="Accept trading days without any row (written as empty days)."
    ),
    corrections: str = typer.Option(
        "refuse", help="Rows that change stored days: refuse (default), apply (rewrite them) or skip (keep stored)."
    ),
    universe: list[str] = typer.Option(["csi300"], help="Universes new instruments join besides 'all' (repeatable)."),
    benchmark: str = typer.Option("SH000300", help="Benchmark symbol (ingested, kept out of universes)."),
) -> None:
    """Validate a source's new rows against the exchange calendar and add them to DIR crash-safely."""
    from deployments.cli.data_ingest import run_ingest

    run_ingest(source, into, query=query, region=region, calendar=calendar, holidays=holidays,
               allow_missing_days=allow_missing_days, corrections=corrections, universe=universe, benchmark=benchmark)


@data_app.command("history")
def history_command(
    data_dir: Path = typer.Argument(..., help="Qlib data directory."),
    limit: int = typer.Option(20, min=1, help="How many data versions to show, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List a data directory's data versions (one per ingest), newest first."""
    from deployments.cli.data_ingest import show_history

    show_history(data_dir, limit, as_json=as_json)
