"""``driftloop status``: the loop at a glance."""

from __future__ import annotations

import typer

from driftloop.cli.ab import print_evaluation
from driftloop.cli.context import cli_context


def status_command(ctx: typer.Context) -> None:
    """What serves where, the traffic split, the last drift verdict and the running A/B test."""
    from datetime import UTC, datetime

    from driftloop.ab.traffic import load_split
    from driftloop.stages.ab_evaluation import compute, running_test
    from driftloop.stages.drift_check import recent_checks

    context = cli_context(ctx)
    settings = context.settings
    engine = context.engine()
    production, staging = context.roles()
    split = load_split(
        engine,
        settings.model.name,
        settings.serving.default_staging_weight,
        settings.serving.default_shadow,
    )
    weight = split.staging_weight if staging else 0.0
    typer.echo(f"model {settings.model.name}")
    typer.echo(f"  Production: {production or 'none (run driftloop bootstrap)'}")
    typer.echo(f"  Staging:    {staging or 'none'}")
    shadow = ", Staging shadows Production" if split.shadow and staging else ""
    typer.echo(f"  traffic:    Production {1 - weight:.0%}, Staging {weight:.0%}{shadow}")
    checks = recent_checks(engine, settings.model.name, 1)
    if checks:
        last = checks[0]
        drifted = f", drifted: {', '.join(last.drifted_features)}" if last.drifted_features else ""
        typer.echo(
            f"  last drift check: {last.batch_name} {last.status}{drifted} "
            f"(report {last.report_id})"
        )
        if last.merged_into is not None:
            typer.echo(f"    merged into drift check {last.merged_into} by one retrain")
    else:
        typer.echo("  last drift check: none yet")
    test = running_test(settings, engine, create=False)
    if test is None:
        typer.echo("  A/B test:   none running")
        return
    evaluation = compute(settings, engine, test, datetime.now(UTC))
    typer.echo(f"  A/B test {test.id} since {test.started_at:%Y-%m-%d %H:%M}:")
    print_evaluation(evaluation, indent="    ")
