"""``driftloop drift``: drift checks, their reports, and the reference they test against."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from driftloop.cli.context import cli_context

if TYPE_CHECKING:
    from driftloop.stages.drift_check import CheckOutcome

app = typer.Typer(help="Drift checks, reports and the reference.", no_args_is_help=True)


@app.command("check")
def drift_check(
    ctx: typer.Context,
    batch: Annotated[
        str | None, typer.Argument(help="Batch id or name (default: the oldest unchecked).")
    ] = None,
    all_batches: Annotated[
        bool, typer.Option("--all", help="Check every unchecked batch, oldest first.")
    ] = False,
) -> None:
    """Test accepted batches for drift against the reference; store and render reports."""
    from driftloop.registry import PRODUCTION
    from driftloop.stages.drift_check import check_next_batch

    context = cli_context(ctx)
    engine = context.engine()
    production = context.version(PRODUCTION)
    while True:
        outcome = check_next_batch(context.settings, engine, batch, production)
        if outcome is None:
            typer.echo("no unchecked accepted batches")
            return
        _print_check(outcome)
        if batch is not None or not all_batches:
            return


@app.command("reports")
def drift_reports(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
) -> None:
    """List recent drift checks with their verdicts and report paths."""
    from driftloop.stages.drift_check import recent_checks

    context = cli_context(ctx)
    checks = recent_checks(context.engine(), context.settings.model.name, limit)
    if not checks:
        typer.echo("no drift checks yet")
    for outcome in checks:
        _print_check(outcome)


@app.command("show")
def drift_show(
    ctx: typer.Context,
    report: Annotated[int, typer.Argument(help="Drift report id (see `drift reports`).")],
) -> None:
    """Show one drift check per feature: each statistic, the bar it had to clear, its p-value."""
    from driftloop.reports.drift import read_report
    from driftloop.storage import DriftCheck, session_scope

    context = cli_context(ctx)
    with session_scope(context.engine()) as session:
        check = session.get(DriftCheck, report)
        if check is not None and check.model_name != context.settings.model.name:
            check = None  # another model's report
        json_path = check.json_path if check is not None else None
        merged_into = check.merged_into if check is not None else None
    if json_path is None or not Path(json_path).is_file():
        typer.echo(
            f"no drift report {report} with a JSON record (see `driftloop drift reports`)", err=True
        )
        raise typer.Exit(1)
    for line in describe_report(read_report(Path(json_path))):
        typer.echo(line)
    if merged_into is not None:
        typer.echo(_merged(merged_into))


def _merged(into: int) -> str:
    return f"merged into drift check {into}: one retrain took that newer check for both"


@app.command("reset-reference")
def drift_reset_reference(
    ctx: typer.Context,
    file: Annotated[
        Path | None,
        typer.Option(help="Reference data file (default: the initial reference split)."),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Make a new reference profile the active one (used when no Production model provides one)."""
    from driftloop.stages.reference_profiles import reset_reference

    context = cli_context(ctx)
    engine = context.engine()
    if not yes:
        typer.confirm("Replace the active drift reference?", abort=True)
    record = reset_reference(context.settings, engine, file)
    typer.echo(
        f"reference profile {record.id}: {record.rows} rows from {record.source} ({record.path})"
    )


def describe_report(record: dict[str, Any]) -> list[str]:
    """Lines for a person from a stored report's JSON record: the verdict, then per column each
    statistic against its bar."""
    lines = [
        f"{record.get('batch', '?')}: {record['status']}, {len(record['drifted_features'])} of "
        f"{len(record['tested_features'])} tested features drifted "
        f"({record['drift_share']:.0%}; drift at {record['required_share']:.0%}); "
        f"thresholds {record['mode']}"
    ]
    batch_test = record.get("batch_test")  # report format 3: the test over features
    if batch_test and "weighted_share" in batch_test:  # drift.weighting: importance
        lines.append(
            f"  batch test: {batch_test['weighted_share']:.0%} of the importance drifted with "
            f"p-values at most {batch_test['bar']:.3g}"
        )
    elif batch_test:
        lines.append(
            f"  batch test: p-value {batch_test['p_value']:.3g} of the "
            f"{int(batch_test['needed'])}th smallest feature vs {batch_test['bar']:.3g}"
        )
    if record.get("weighting") == "importance" and record.get("importance_share") is not None:
        lines.append(
            f"  weighted by importance: the drifted features carry "
            f"{record['importance_share']:.0%} of the Production version's mean |SHAP|"
        )
    together = record.get("multivariate")  # report format 4: the features tested together
    if together:
        movers = ", ".join(f"{c['feature']} {c['share']:.0%}" for c in together["contributions"])
        lines.append(
            f"  features together: reconstruction error {float(together['increase']):+.1%} vs "
            f"held-out reference rows, p {together['p_value']:.3g} vs {together['level']:g}: "
            f"{'flagged' if together['flag'] else 'ok'}"
            f"{' (calls drift)' if together.get('calls_drift') else ''}"
            f"{f'; grew most: {movers}' if movers else ''}"
        )
    for segment in record.get("segments") or []:  # drifted first
        worst = ", ".join(f"{f['feature']} p {f['p_value']:.2g}" for f in segment["features"])
        lines.append(
            f"  segment {segment['column']}={segment['value']} ({segment['rows']} rows): "
            f"{'drifted' if segment['flagged'] else 'ok'}, p {segment['p_value']:.3g} ({worst})"
        )
    columns = [*record["features"], *([record["target"]] if record.get("target") else [])]
    for column in columns:
        state = "drifted" if column["drifted"] else "ok" if column["tested"] else "not tested"
        lines.append(f"  {column['name']} ({column['count']} values): {state}")
        for name, test in column["statistics"].items():
            bar = test["floor"] if test["decided_by"] == "floor" else test["threshold"]
            p_value = "" if test.get("p_value") is None else f", p {test['p_value']:.3g}"
            mark = ">" if test["flag"] else "<=" if float(test["value"]) <= float(bar) else "vs"
            unseen = (  # categorical permutation test (format 3)
                f", unseen {test['unseen_share']:.1%}, largest new level "
                f"{int(test['largest_unseen_count'])} (p {test['new_level_p_value']:.3g})"
                if "unseen_share" in test
                else ""
            )
            lines.append(
                f"    {name}: {float(test['value']):.4g} {mark} {float(bar):.4g} "
                f"({test['decided_by']}){p_value}{unseen}"
            )
    return lines


def _print_check(outcome: CheckOutcome) -> None:
    from driftloop.vocabulary import DriftStatus

    if outcome.status == DriftStatus.FAILED:
        typer.echo(f"{outcome.batch_name}: check failed: {outcome.error}")
        return
    share = f" {outcome.drift_share:.0%} of features" if outcome.drift_share is not None else ""
    drifted = ", ".join(outcome.drifted_features) or "none"
    target = "; target drift" if outcome.target_drift else ""
    again = " (checked before)" if not outcome.new else ""
    typer.echo(f"{outcome.batch_name}: {outcome.status}{share}{again}; drifted: {drifted}{target}")
    if outcome.html_path:
        typer.echo(f"    report: {outcome.html_path}")
    if outcome.merged_into is not None:
        typer.echo(f"    {_merged(outcome.merged_into)}")
