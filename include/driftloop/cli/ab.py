"""``driftloop ab``: the A/B test between Staging and Production, its reports, the audit log of
every promotion, rejection and rollback, and (as at the top level) the moves themselves."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from driftloop.cli import promotion
from driftloop.cli.context import cli_context, configure_logging, fmt

if TYPE_CHECKING:
    from driftloop.stages.ab_tests import Evaluation

app = typer.Typer(help="A/B tests between Staging and Production.", no_args_is_help=True)


@app.command("evaluate")
def ab_evaluate_command(
    ctx: typer.Context,
    act: Annotated[
        bool, typer.Option(help="Carry out a promote, reject or inconclusive decision.")
    ] = True,
) -> None:
    """Look at the running test (what the `ab_evaluate` DAG does): numbers, report, decision."""
    from driftloop.stages.ab_evaluation import evaluate

    configure_logging()
    context = cli_context(ctx)
    evaluation = evaluate(context.settings, context.engine(), act=act)
    if evaluation is None:
        typer.echo("no A/B test running: no Staging version, or it has answered no request yet")
        return
    print_evaluation(evaluation)


@app.command("reports")
def ab_reports(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
) -> None:
    """List recent A/B evaluations with their decisions and report paths."""
    from driftloop.stages.ab_evaluation import recent_evaluations

    rows = recent_evaluations(cli_context(ctx).engine(), limit)
    if not rows:
        typer.echo("no A/B evaluations yet")
    for r in rows:
        values = f"{fmt(r['production'])} vs {fmt(r['staging'])}"
        typer.echo(
            f"#{r['id']} test {r['test_id']} (Production vs Staging {r['pair']}) "
            f"{r['created_at'][:19]} {r['decision']}: {r['metric']} {values}, "
            f"samples {r['samples']}, p {fmt(r['p_value'])}"
        )
        typer.echo(f"    report: {r['html_path']}")


@app.command("history")
def ab_history(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
) -> None:
    """The audit log: every promotion, rejection and rollback, who did it, when and why."""
    from driftloop.stages.promotion import history

    context = cli_context(ctx)
    rows = history(context.engine(), context.settings.model.name, limit)
    if not rows:
        typer.echo("no promotions, rejections or rollbacks yet")
    for r in rows:
        typer.echo(
            f"#{r['id']} {r['created_at'][:19]} {r['action']} by {r['actor']}: Production "
            f"{r['production_before'] or '-'} -> {r['production_after'] or '-'} "
            f"(Staging was {r['staging_before'] or '-'}): {r['reason']}"
        )


# The moves the audit log lists, also here beside it; `driftloop promote` etc. stay the short form.
app.command("promote")(promotion.promote_command)
app.command("reject")(promotion.reject_command)
app.command("rollback")(promotion.rollback_command)


@app.command("simulate-aa")
def ab_simulate_aa(
    ctx: typer.Context,
    tests: Annotated[int, typer.Option(help="How many A/A tests.")] = 1000,
    records: Annotated[int, typer.Option(help="Records with feedback per test.")] = 5000,
    staging_share: Annotated[float, typer.Option(help="Share of traffic on Staging.")] = 0.5,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """How often the configured test promotes a Staging that is no better, looked at every step."""
    from driftloop.ab.simulation import simulate_aa

    ab = cli_context(ctx).settings.ab
    result = simulate_aa(
        tests,
        records,
        staging_share=staging_share,
        alpha=ab.alpha,
        tau=ab.min_effect,
        min_samples=ab.min_samples,
        seed=seed,
    )
    typer.echo(
        f"{result.tests} A/A tests, each looked at {result.looks_per_test} times: "
        f"false promotion rate {result.false_promotion_rate:.3f} "
        f"({result.false_promotions} tests; alpha {ab.alpha:g}), "
        f"false rejections {result.false_rejections}"
    )


def print_evaluation(evaluation: Evaluation, indent: str = "") -> None:
    """Each variant's numbers, the sequential test, the decision (``ab evaluate``, ``status``)."""
    metric = evaluation.metric
    for label, variant in (("production", evaluation.production), ("staging", evaluation.staging)):
        estimate = variant.metrics[metric]
        band = f" [{fmt(estimate.low)}, {fmt(estimate.high)}]" if estimate.low is not None else ""
        typer.echo(
            f"{indent}{label:10} v{variant.version}: {metric} {fmt(estimate.value)}{band}, "
            f"{variant.with_feedback} with feedback of {variant.answered} answered, "
            f"errors {variant.error_rate:.1%}, p99 {fmt(variant.latency_ms.get('p99'), 1)} ms"
        )
    seq = evaluation.sequential
    if seq:
        typer.echo(
            f"{indent}difference {seq.difference:+.4f} (always-valid interval "
            f"{seq.ci_low:+.4f} to {seq.ci_high:+.4f}), p {seq.p_value:.4f}; {seq.method}, "
            f"clusters {seq.production_clusters} / {seq.staging_clusters}"
        )
    for check in evaluation.srm:
        typer.echo(f"{indent}sample ratio: {check.sentence()}")
    if evaluation.unmatched_feedback:
        typer.echo(
            f"{indent}unmatched feedback: {evaluation.unmatched_feedback} (no prediction row)"
        )
    typer.echo(f"{indent}decision: {evaluation.decision}: {evaluation.reason}")
    if evaluation.approval:
        typer.echo(
            f"{indent}waits for a person: approval #{evaluation.approval['id']} "
            "(ab.approval: required; ab_evaluate announces it to Airflow's ab_approval DAG)"
        )
    if evaluation.html_path:
        typer.echo(f"{indent}report: {evaluation.html_path}")
