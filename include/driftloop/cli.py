"""The ``driftloop`` command line: what a person runs to set up, feed and inspect the loop."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from driftloop.config import ConfigError, Settings, load_settings

app = typer.Typer(
    help="driftloop: monitor drift, retrain, register, serve and promote.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Show and check the configuration.", no_args_is_help=True)
db_app = typer.Typer(help="driftloop's database schema (Alembic migrations).", no_args_is_help=True)
stream_app = typer.Typer(help="Replay the data set as a stream of batches.", no_args_is_help=True)
batches_app = typer.Typer(help="Ingest, list and reprocess batches.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")
app.add_typer(stream_app, name="stream")
app.add_typer(batches_app, name="batches")
drift_app = typer.Typer(help="Drift checks, reports and the reference.", no_args_is_help=True)
app.add_typer(drift_app, name="drift")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="YAML config (default: $DRIFTLOOP_CONFIG or ./driftloop.yaml)."
    ),
]


class _State:
    config: Path | None = None


# MLflow's client retries an unreachable server for minutes by default (7 retries, backoff
# factor 2, 120 s timeout); a person at a terminal wants the one-sentence error within about
# 10 seconds. Values set in the environment win.
MLFLOW_PATIENCE = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
}


@app.callback()
def _root(config: ConfigOption = None) -> None:
    _State.config = config
    for name, value in MLFLOW_PATIENCE.items():
        os.environ.setdefault(name, value)


def _settings() -> Settings:
    return load_settings(_State.config)


def _engine(settings: Settings, require_schema: bool = True):
    """The database; commands that need its tables create the embedded default on first use."""
    if require_schema:
        from driftloop.database import open_database

        return open_database(settings)
    from driftloop.storage import make_engine

    return make_engine(settings.database_url)


@config_app.command("show")
def config_show() -> None:
    """Print the resolved configuration (YAML file plus environment overrides) as JSON."""
    typer.echo(_settings().model_dump_json(indent=2))


@config_app.command("check")
def config_check() -> None:
    """Validate the configuration and say where its data lives."""
    settings = _settings()
    typer.echo(
        f"config ok: {len(settings.feature_columns)} features, target {settings.data.target!r} "
        f"({settings.data.task}), data {settings.data.path}"
    )


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Migrate driftloop's tables up to REVISION (default: the newest)."""
    from driftloop.storage import current_revision, upgrade

    engine = _engine(_settings(), require_schema=False)
    upgrade(engine, revision)
    typer.echo(f"database at revision {current_revision(engine)}")


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision, or 'base'.")],
) -> None:
    """Migrate driftloop's tables down to REVISION ('base' drops them all)."""
    from driftloop.storage import current_revision, downgrade

    engine = _engine(_settings(), require_schema=False)
    downgrade(engine, revision)
    typer.echo(f"database at revision {current_revision(engine) or 'base'}")


@db_app.command("current")
def db_current() -> None:
    """Print the database's revision and the newest one this code knows."""
    from driftloop.storage import current_revision, head_revision

    engine = _engine(_settings(), require_schema=False)
    typer.echo(f"current {current_revision(engine) or 'base'}, head {head_revision()}")


@stream_app.command("reference")
def stream_reference() -> None:
    """Write the initial reference split: the data the first model is trained on."""
    from driftloop.stream import build_reference

    path, rows = build_reference(_settings())
    typer.echo(f"reference split: {rows} rows in {path}")


@stream_app.command("scenarios")
def stream_scenarios() -> None:
    """List the replay scenarios."""
    from driftloop.scenarios import SCENARIOS

    for scenario in SCENARIOS.values():
        params = f" [{', '.join(scenario.params)}]" if scenario.params else ""
        typer.echo(f"{scenario.name:12} {scenario.description}{params}")


@stream_app.command("replay")
def stream_replay(
    scenario: Annotated[str, typer.Option(help="none, gradual, sudden or label-shift.")] = "none",
    batches: Annotated[
        int | None, typer.Option(help="How many batches (default: all the pool holds).")
    ] = None,
    start_batch: Annotated[
        int | None, typer.Option(help="Batches before the shift starts (default: a third).")
    ] = None,
    strength: Annotated[
        float | None, typer.Option(help="Size of the shift (see `stream scenarios`).")
    ] = None,
    shift_feature: Annotated[
        list[str] | None, typer.Option(help="A feature the sudden scenario shifts (repeatable).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed (default: stream.seed).")] = None,
    inject_fault: Annotated[
        list[str] | None,
        typer.Option(
            help="Also write a broken copy of a batch: e.g. text-in-numeric (repeatable)."
        ),
    ] = None,
) -> None:
    """Cut the stream pool into time-stamped batches in the landing folder."""
    from driftloop.faults import FAULTS, write_faulty_batch
    from driftloop.stream import batch_file_name, replay

    settings = _settings()
    unknown = sorted(set(inject_fault or []) - set(FAULTS))
    if unknown:
        raise ValueError(f"unknown fault(s) {unknown}; choose from {sorted(FAULTS)}")
    written = replay(
        settings, scenario, batches, start_batch, strength, tuple(shift_feature or ()), seed
    )
    for batch in written:
        note = f"  ({batch.note})" if batch.note else ""
        typer.echo(f"wrote {batch.path.name}: {batch.rows} rows{note}")
    for offset, kind in enumerate(inject_fault or [], start=1):
        import pandas as pd

        from driftloop.data import read_table

        source = written[min(offset, len(written)) - 1]
        frame: pd.DataFrame = read_table(source.path, settings.data)
        path = source.path.with_name(
            batch_file_name(offset, source.batch_time, source.path.suffix, f"fault-{kind}")
        )
        write_faulty_batch(kind, frame, path, settings)
        typer.echo(f"wrote {path.name}: a broken copy ({kind})")


@batches_app.command("ingest")
def batches_ingest() -> None:
    """Validate every file in the landing folder: accept it or quarantine it with its reasons."""
    from driftloop.ingest import ingest_landing

    settings = _settings()
    outcomes = ingest_landing(settings, _engine(settings))
    if not outcomes:
        typer.echo(f"no files in {settings.storage.landing_dir}")
    for outcome in outcomes:
        _print_outcome(outcome)


@batches_app.command("list")
def batches_list(
    status: Annotated[
        str | None, typer.Option(help="Only batches with this status (accepted, quarantined).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """List recorded batches, oldest first, with their status and reasons."""
    from driftloop.ingest import list_batches

    settings = _settings()
    rows = list_batches(_engine(settings), status)
    if not rows:
        typer.echo("no batches" + (f" with status {status}" if status else ""))
    for batch in rows:
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "id": batch.id,
                        "name": batch.name,
                        "status": batch.status,
                        "rows": batch.n_rows,
                        "time": batch.batch_time.isoformat(),
                        "reasons": batch.reasons,
                        "path": batch.path,
                    }
                )
            )
            continue
        rows_text = f"{batch.n_rows} rows" if batch.n_rows is not None else "-"
        typer.echo(f"{batch.id:>4}  {batch.status:11}  {batch.name}  {rows_text}")
        for reason in batch.reasons:
            typer.echo(f"        - {reason}")
        if batch.status == "quarantined":
            typer.echo(f"        file: {batch.path}")


@batches_app.command("reprocess")
def batches_reprocess(
    batch: Annotated[str, typer.Argument(help="Batch id or file name.")],
    file: Annotated[
        Path | None, typer.Option(help="A fixed file to use instead of the quarantined one.")
    ] = None,
) -> None:
    """Validate a quarantined batch again after fixing its file."""
    from driftloop.ingest import reprocess

    settings = _settings()
    _print_outcome(reprocess(batch, settings, _engine(settings), file))


@drift_app.command("check")
def drift_check(
    batch: Annotated[
        str | None, typer.Argument(help="Batch id or name (default: the oldest unchecked).")
    ] = None,
    all_batches: Annotated[
        bool, typer.Option("--all", help="Check every unchecked batch, oldest first.")
    ] = False,
) -> None:
    """Test accepted batches for drift against the reference; store and render reports."""
    from driftloop.drift.monitor import check_next_batch
    from driftloop.registry import current_version

    settings = _settings()
    engine = _engine(settings)
    production = current_version(settings)
    while True:
        outcome = check_next_batch(settings, engine, batch, production)
        if outcome is None:
            typer.echo("no unchecked accepted batches")
            return
        _print_check(outcome)
        if batch is not None or not all_batches:
            return


@drift_app.command("reports")
def drift_reports(limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20) -> None:
    """List recent drift checks with their verdicts and report paths."""
    from driftloop.drift.monitor import recent_checks

    checks = recent_checks(_engine(_settings()), limit)
    if not checks:
        typer.echo("no drift checks yet")
    for outcome in checks:
        _print_check(outcome)


@drift_app.command("show")
def drift_show(
    report: Annotated[int, typer.Argument(help="Drift report id (see `drift reports`).")],
) -> None:
    """Show one drift check per feature: each statistic, the bar it had to clear, its p-value."""
    from driftloop.drift.report import read_report
    from driftloop.storage import DriftCheck, session_scope

    with session_scope(_engine(_settings())) as session:
        check = session.get(DriftCheck, report)
        json_path = check.json_path if check is not None else None
    if json_path is None or not Path(json_path).is_file():
        typer.echo(
            f"no drift report {report} with a JSON record (see `driftloop drift reports`)", err=True
        )
        raise typer.Exit(1)
    for line in describe_report(read_report(Path(json_path))):
        typer.echo(line)


def describe_report(record: dict) -> list[str]:
    """Lines for a person: the verdict, then per column each statistic against its bar."""
    lines = [
        f"{record.get('batch', '?')}: {record['status']}, {len(record['drifted_features'])} of "
        f"{len(record['tested_features'])} tested features drifted "
        f"({record['drift_share']:.0%}; drift at {record['required_share']:.0%}); "
        f"thresholds {record['mode']}"
    ]
    columns = [*record["features"], *([record["target"]] if record.get("target") else [])]
    for column in columns:
        state = "drifted" if column["drifted"] else "ok" if column["tested"] else "not tested"
        lines.append(f"  {column['name']} ({column['count']} values): {state}")
        for name, test in column["statistics"].items():
            bar = test["floor"] if test["decided_by"] == "floor" else test["threshold"]
            p_value = "" if test.get("p_value") is None else f", p {test['p_value']:.3g}"
            mark = ">" if test["flag"] else "<=" if float(test["value"]) <= float(bar) else "vs"
            lines.append(
                f"    {name}: {float(test['value']):.4g} {mark} {float(bar):.4g} "
                f"({test['decided_by']}){p_value}"
            )
    return lines


@drift_app.command("reset-reference")
def drift_reset_reference(
    file: Annotated[
        Path | None,
        typer.Option(help="Reference data file (default: the initial reference split)."),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Make a new reference profile the active one (used when no Production model provides one)."""
    from driftloop.drift.monitor import reset_reference

    settings = _settings()
    engine = _engine(settings)
    if not yes:
        typer.confirm("Replace the active drift reference?", abort=True)
    record = reset_reference(settings, engine, file)
    typer.echo(
        f"reference profile {record.id}: {record.rows} rows from {record.source} ({record.path})"
    )


@app.command("bootstrap")
def bootstrap_command() -> None:
    """Train the first model on the initial reference split and register it as Production."""
    from driftloop.training.retrain import bootstrap

    _logging()
    settings = _settings()
    decision = bootstrap(settings, _engine(settings))
    typer.echo(
        f"version {decision.model_version} is Production ({decision.metric} on PyCaret's holdout: {decision.challenger_score:.4f})"
    )


@app.command("retrain")
def retrain_command(
    drift_check: Annotated[
        int | None, typer.Option(help="The drift report id behind this retrain.")
    ] = None,
    latest_drift: Annotated[
        bool, typer.Option("--latest-drift", help="Use the newest drift verdict.")
    ] = False,
) -> None:
    """Run the retrain steps here (what the `retrain` DAG does): assemble, train, evaluate, register, gate."""
    from driftloop.drift.monitor import latest_drift_check
    from driftloop.training import retrain as steps

    _logging()
    settings = _settings()
    engine = _engine(settings)
    if latest_drift:
        drift_check = latest_drift_check(engine)
        if drift_check is None:
            raise ValueError(
                "no drift verdict yet: nothing to retrain for (run `driftloop drift check --all`)"
            )
    assembly = steps.assemble(
        settings, engine, drift_check, "manual" if drift_check is None else "drift"
    )
    if "skip" in assembly:
        typer.echo(f"skipped: {assembly['skip']['reason']}")
        return
    trained = steps.train_and_log(settings, engine, assembly)
    decision = steps.gate(
        settings, engine, steps.register(settings, engine, steps.evaluate(settings, trained))
    )
    typer.echo(
        f"version {decision.model_version} ({trained['model_name']}): {decision.decision}: {decision.reason}"
    )


@app.command("score")
def score(
    file: Annotated[
        Path | None,
        typer.Argument(help="CSV or Parquet file to score (default: every file in the inbox)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Where to write the answers (default: scoring/out/)."),
    ] = None,
    no_log: Annotated[
        bool, typer.Option("--no-log", help="Do not write the rows to the prediction log.")
    ] = False,
) -> None:
    """Score unlabelled rows with the Production version; bad rows are listed, not scored.

    A file from the inbox (``scoring/inbox/``) moves to ``scoring/done/`` once scored, or to
    ``scoring/quarantine/`` when no row could be used; a file elsewhere stays where it is.
    """
    from driftloop.scoring.batch import Outcome, score_file, waiting_files

    settings = _settings()
    engine = _engine(settings)
    if out is not None and file is None:
        raise typer.BadParameter("--out needs a FILE: each inbox file gets its own answers")
    files = [file] if file is not None else waiting_files(settings)
    if not files:
        typer.echo(f"nothing to score: {settings.storage.scoring_dir / 'inbox'} is empty")
        return
    failed = 0
    for path in files:
        result = score_file(
            settings,
            engine,
            path,
            out,
            log_predictions=False if no_log else None,
            progress=lambda rows, name=path.name: typer.echo(
                f"{name}: {rows:,} rows read", err=True
            ),
        )
        if result.outcome is Outcome.QUARANTINED:
            failed += 1
            typer.echo(f"{path.name}: not scored: {result.reason}")
            if result.input != path:
                typer.echo(f"    moved to {result.input}")
            continue
        shadow = f"; Staging {result.shadow_version} in shadow" if result.shadow_version else ""
        typer.echo(
            f"{path.name}: {result.scored:,} of {result.rows:,} rows scored by version "
            f"{result.version}{shadow} in {result.seconds:.1f} s"
        )
        typer.echo(f"    answers: {result.answers}")
        if result.rejected is not None:
            typer.echo(f"    {result.set_aside:,} rows set aside, with reasons: {result.rejected}")
    if failed:
        raise typer.Exit(1)


@app.command("models")
def models_command() -> None:
    """List the registered versions with their aliases, stages, gate decisions and numbers."""
    from driftloop.registry import list_versions
    from driftloop.training.gatekeeper import latest_gates

    settings = _settings()
    versions = list_versions(settings)
    if not versions:
        typer.echo("no registered versions: run `driftloop bootstrap`")
    gates = latest_gates(_engine(settings))
    for v in versions:
        reason = f"  ({v['reason']})" if v["reason"] else ""
        typer.echo(
            f"version {v['version']:>3}  alias {v['aliases']:11} stage {v['stage']:10} gate {v['gate']}{reason}"
        )
        if v["version"] in gates:
            typer.echo(f"             gate numbers: {gates[v['version']]}")


traffic_app = typer.Typer(
    help="Traffic split between Production and Staging.", no_args_is_help=True
)
app.add_typer(traffic_app, name="traffic")


@traffic_app.command("show")
def traffic_show() -> None:
    """Print the stored split (what every server worker uses)."""
    from serving.routing import load_split

    settings = _settings()
    split = load_split(_engine(settings), settings.model.name, default_weight=0.0)
    shadow = ", staging shadows production" if split.shadow else ""
    typer.echo(
        f"{settings.model.name}: staging {split.staging_weight:.0%}, production {1 - split.staging_weight:.0%}{shadow}"
    )


@traffic_app.command("set")
def traffic_set(
    staging: Annotated[float, typer.Option(help="Share of traffic for Staging, 0..1.")],
    shadow: Annotated[
        bool, typer.Option(help="Staging also predicts every request, unreturned.")
    ] = False,
) -> None:
    """Store a new split; servers pick it up on their next poll."""
    import getpass

    from serving.routing import TrafficSplit, save_split

    settings = _settings()
    save_split(
        _engine(settings),
        settings.model.name,
        TrafficSplit(staging, shadow),
        who=f"cli:{getpass.getuser()}",
    )
    traffic_show()


@app.command("simulate")
def simulate_command(
    url: Annotated[str, typer.Option(help="The prediction server.")] = "http://127.0.0.1:8000",
    requests_: Annotated[
        int, typer.Option("--requests", help="How many one-record requests.")
    ] = 200,
    feedback: Annotated[bool, typer.Option(help="Also send each record's true label.")] = False,
    batches: Annotated[int, typer.Option(help="Draw rows from the newest N accepted batches.")] = 3,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Send traffic (and feedback) built from accepted batches; print the split the server made."""
    import os

    import pandas as pd

    from driftloop.data import read_table
    from driftloop.ingest import ACCEPTED, list_batches
    from serving.simulator import simulate, wait_ready

    settings = _settings()
    recent = list_batches(_engine(settings), ACCEPTED)[-batches:]
    if not recent:
        raise ValueError("no accepted batches to draw rows from: replay and ingest a stream first")
    frame = pd.concat([read_table(Path(b.path), settings.data) for b in recent], ignore_index=True)
    records = frame[settings.feature_columns].to_dict("records")
    labels = (
        frame[settings.data.target].tolist() if feedback and settings.data.target in frame else None
    )
    wait_ready(url)
    result = simulate(
        url, records, labels, requests_, seed=seed, api_key=os.environ.get("DRIFTLOOP_API_KEY")
    )
    for line in result.summary():
        typer.echo(line)
    if result.failed:
        raise RuntimeError(f"{sum(result.failed.values())} requests failed")


ab_app = typer.Typer(help="A/B tests between Staging and Production.", no_args_is_help=True)
app.add_typer(ab_app, name="ab")
Reason = Annotated[str | None, typer.Option(help="Why (kept in the audit log); asked when absent.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
Actor = Annotated[
    str | None, typer.Option(help="Who acts, for the audit log (default: your user name).")
]


@ab_app.command("evaluate")
def ab_evaluate_command(
    act: Annotated[
        bool, typer.Option(help="Carry out a promote, reject or inconclusive decision.")
    ] = True,
) -> None:
    """Look at the running test (what the `ab_evaluate` DAG does): numbers, report, decision."""
    from driftloop.ab.evaluate import evaluate

    _logging()
    settings = _settings()
    evaluation = evaluate(settings, _engine(settings), act=act)
    if evaluation is None:
        typer.echo("no A/B test running: no Staging version, or it has answered no request yet")
        return
    _print_evaluation(evaluation.to_dict())


@ab_app.command("reports")
def ab_reports(limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20) -> None:
    """List recent A/B evaluations with their decisions and report paths."""
    from driftloop.ab.evaluate import recent_evaluations

    settings = _settings()
    rows = recent_evaluations(_engine(settings), limit)
    if not rows:
        typer.echo("no A/B evaluations yet")
    for r in rows:
        values = f"{_fmt(r['production'])} vs {_fmt(r['staging'])}"
        typer.echo(
            f"#{r['id']} test {r['test_id']} (Production vs Staging {r['pair']}) {r['created_at'][:19]} "
            f"{r['decision']}: {r['metric']} {values}, samples {r['samples']}, p {_fmt(r['p_value'])}"
        )
        typer.echo(f"    report: {r['html_path']}")


@ab_app.command("history")
def ab_history(limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20) -> None:
    """The audit log: every promotion, rejection and rollback, who did it, when and why."""
    from driftloop.promotion import history

    settings = _settings()
    rows = history(_engine(settings), settings.model.name, limit)
    if not rows:
        typer.echo("no promotions, rejections or rollbacks yet")
    for r in rows:
        typer.echo(
            f"#{r['id']} {r['created_at'][:19]} {r['action']} by {r['actor']}: Production "
            f"{r['production_before'] or '-'} -> {r['production_after'] or '-'} "
            f"(Staging was {r['staging_before'] or '-'}): {r['reason']}"
        )


@ab_app.command("simulate-aa")
def ab_simulate_aa(
    tests: Annotated[int, typer.Option(help="How many A/A tests.")] = 1000,
    records: Annotated[int, typer.Option(help="Records with feedback per test.")] = 5000,
    staging_share: Annotated[float, typer.Option(help="Share of traffic on Staging.")] = 0.5,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """How often the configured test promotes a Staging that is no better, looked at every step."""
    from driftloop.ab.simulation import simulate_aa

    ab = _settings().ab
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


@app.command("status")
def status_command() -> None:
    """What serves where, the traffic split, the last drift verdict and the running A/B test."""
    from driftloop.ab.evaluate import compute, running_test
    from driftloop.drift.monitor import recent_checks
    from driftloop.promotion import roles
    from serving.routing import load_split

    settings = _settings()
    engine = _engine(settings)
    production, staging = roles(settings)
    split = load_split(engine, settings.model.name, settings.serving.default_staging_weight)
    weight = split.staging_weight if staging else 0.0
    typer.echo(f"model {settings.model.name}")
    typer.echo(f"  Production: {production or 'none (run driftloop bootstrap)'}")
    typer.echo(f"  Staging:    {staging or 'none'}")
    shadow = ", Staging shadows Production" if split.shadow and staging else ""
    typer.echo(f"  traffic:    Production {1 - weight:.0%}, Staging {weight:.0%}{shadow}")
    checks = recent_checks(engine, 1)
    if checks:
        last = checks[0]
        drifted = f", drifted: {', '.join(last.drifted_features)}" if last.drifted_features else ""
        typer.echo(
            f"  last drift check: {last.batch_name} {last.status}{drifted} (report {last.report_id})"
        )
    else:
        typer.echo("  last drift check: none yet")
    test = running_test(settings, engine, create=False)
    if test is None:
        typer.echo("  A/B test:   none running")
        return
    from datetime import UTC, datetime

    evaluation = compute(settings, engine, test, datetime.now(UTC)).to_dict()
    typer.echo(f"  A/B test {test.id} since {test.started_at:%Y-%m-%d %H:%M}:")
    _print_evaluation(evaluation, indent="    ")


@app.command("promote")
def promote_command(reason: Reason = None, yes: Yes = False, actor: Actor = None) -> None:
    """Make the Staging version Production now (the old Production is archived)."""
    from driftloop.promotion import promote, roles

    settings = _settings()
    production, staging = roles(settings)
    if staging is None:
        raise ValueError(f"{settings.model.name} has no Staging version to promote")
    _act(
        f"Promote Staging v{staging} to Production (archiving v{production})?",
        lambda why, who: promote(
            settings, _engine(settings), who, why, expected=(production, staging)
        ),
        reason,
        yes,
        actor,
    )


@app.command("reject")
def reject_command(reason: Reason = None, yes: Yes = False, actor: Actor = None) -> None:
    """Archive the Staging version; all traffic goes back to Production."""
    from driftloop.promotion import reject, roles

    settings = _settings()
    production, staging = roles(settings)
    if staging is None:
        raise ValueError(f"{settings.model.name} has no Staging version to reject")
    _act(
        f"Reject Staging v{staging} (archive it)?",
        lambda why, who: reject(
            settings, _engine(settings), who, why, expected=(production, staging)
        ),
        reason,
        yes,
        actor,
    )


@app.command("rollback")
def rollback_command(reason: Reason = None, yes: Yes = False, actor: Actor = None) -> None:
    """Restore the previous Production version (the current one is archived)."""
    from driftloop.promotion import previous_production, roles, rollback

    settings = _settings()
    engine = _engine(settings)
    production, _ = roles(settings)
    previous = previous_production(engine, settings.model.name, production)
    if previous is None:
        raise ValueError(
            f"no earlier Production version of {settings.model.name} to restore "
            f"(current: {production or 'none'})"
        )
    _act(
        f"Roll Production back from v{production} to v{previous}?",
        lambda why, who: rollback(settings, engine, who, why),
        reason,
        yes,
        actor,
    )


def _act(question, action, reason, yes, actor) -> None:
    import getpass

    if not yes:
        typer.confirm(question, abort=True)
    if not reason:
        reason = typer.prompt("Reason (for the audit log)")
    move = action(reason, f"cli:{actor or getpass.getuser()}")
    typer.echo(
        f"{move.action}: Production {move.production_before or '-'} -> {move.production_after or '-'} "
        f"(audit #{move.audit_id}); servers follow within serving.poll_seconds"
    )


def _print_evaluation(e: dict, indent: str = "") -> None:
    metric = e["metric"]
    for variant in ("production", "staging"):
        v = e[variant]
        estimate = v["metrics"][metric]
        band = (
            f" [{_fmt(estimate['low'])}, {_fmt(estimate['high'])}]"
            if estimate["low"] is not None
            else ""
        )
        typer.echo(
            f"{indent}{variant:10} v{v['version']}: {metric} {_fmt(estimate['value'])}{band}, "
            f"{v['with_feedback']} with feedback of {v['answered']} answered, "
            f"errors {v['error_rate']:.1%}, p99 {_fmt(v['latency_ms'].get('p99'), 1)} ms"
        )
    seq = e.get("sequential")
    if seq:
        typer.echo(
            f"{indent}difference {seq['difference']:+.4f} (always-valid interval "
            f"{seq['ci_low']:+.4f} to {seq['ci_high']:+.4f}), p {seq['p_value']:.4f}"
        )
    if e.get("unmatched_feedback"):
        typer.echo(f"{indent}unmatched feedback: {e['unmatched_feedback']} (no prediction row)")
    typer.echo(f"{indent}decision: {e['decision']}: {e['reason']}")
    if e.get("html_path"):
        typer.echo(f"{indent}report: {e['html_path']}")


def _fmt(value, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


@app.command("demo")
def demo_command(
    home: Annotated[
        Path | None,
        typer.Option(help="Where everything goes (default: storage.home); wiped first."),
    ] = None,
) -> None:
    """Run the whole loop for real: MLflow, Airflow's components and the server as processes,
    drift -> retrain -> Staging -> A/B decision, then a summary; everything is stopped after."""
    from driftloop.config import config_path
    from driftloop.demo import run_loop, summary_lines

    settings = _settings()
    result = run_loop(config_path(_State.config), home or settings.storage.home)
    for line in summary_lines(result):
        typer.echo(line)
    if not result.decision or result.traffic.get("failed"):
        raise RuntimeError("the loop did not reach an A/B decision without failed requests")


def _logging() -> None:
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("driftloop").setLevel(logging.INFO)


def _print_check(outcome) -> None:
    if outcome.status == "failed":
        typer.echo(f"{outcome.batch_name}: check failed: {outcome.error}")
        return
    share = f" {outcome.drift_share:.0%} of features" if outcome.drift_share is not None else ""
    drifted = ", ".join(outcome.drifted_features) or "none"
    target = "; target drift" if outcome.target_drift else ""
    again = " (checked before)" if not outcome.new else ""
    typer.echo(f"{outcome.batch_name}: {outcome.status}{share}{again}; drifted: {drifted}{target}")
    if outcome.html_path:
        typer.echo(f"    report: {outcome.html_path}")


def _print_outcome(outcome) -> None:
    rows = f", {outcome.n_rows} rows" if outcome.n_rows is not None else ""
    typer.echo(f"{outcome.name}: {outcome.status} (batch {outcome.batch_id}{rows})")
    for reason in outcome.reasons:
        typer.echo(f"    - {reason}")
    for note in outcome.notes:
        typer.echo(f"    note: {note}")


def main() -> None:
    """Entry point: known errors become one sentence and an exit code, not a traceback."""
    from driftloop.ingest import IngestError
    from driftloop.stream import StreamError

    try:
        # without standalone mode click returns a command's ``typer.Exit`` code, not exits
        code = app(standalone_mode=False)
    except KeyboardInterrupt:  # Ctrl-C: whatever was started has been stopped on the way out
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except typer.Abort:  # a "no" at a confirmation (click's Abort is a RuntimeError too)
        typer.echo("aborted", err=True)
        sys.exit(1)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except (IngestError, StreamError, ValueError, RuntimeError, FileNotFoundError) as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except Exception as exc:
        mlflow_errors = sys.modules.get("mlflow.exceptions")  # imported if MLflow raised
        if mlflow_errors and isinstance(exc, mlflow_errors.MlflowException):
            message = str(exc).strip().splitlines() or [exc.error_code]
            where = sys.modules["mlflow"].get_tracking_uri()
            typer.echo(f"error: MLflow at {where}: {message[0]}", err=True)
            sys.exit(1)
        # Usage errors (click's, which typer vendors) show their message and carry an exit code.
        if hasattr(exc, "show") and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            sys.exit(exc.exit_code)
        raise
    sys.exit(code if isinstance(code, int) else 0)
