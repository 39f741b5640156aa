"""Production's health: its online metric from feedback, tracked over time.

Data drift is one reason to retrain; a model that gets worse on live traffic is another, even
when the inputs look the same (concept drift). Each check compares the Production version's
first ``ab.decay_window`` records with feedback against its latest ones; a drop beyond
``ab.decay_limit`` is decay. Only a *new* decay (the version's previous check was healthy)
is announced, so ``ab_evaluate`` emits ``driftloop://decay`` once, not every hour.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd
import sqlalchemy as sa

from driftloop.ab.statistics import outcomes
from driftloop.config import Settings
from driftloop.storage import Feedback, HealthCheck, Prediction, session_scope
from driftloop.task import task_of
from driftloop.vocabulary import Role


@dataclass(frozen=True)
class Health:
    check_id: int
    model_version: str
    metric: str
    baseline: float | None
    current: float | None
    samples: int
    decayed: bool
    new_decay: bool
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


def check_production(settings: Settings, engine: sa.Engine, version: str) -> Health:
    """Compare the version's first and latest feedback windows; store and return the check."""
    ab = settings.ab
    decision = task_of(settings).decision_metric(ab.metric)
    metric = decision.name
    labelled = _labelled(engine, settings.model.name, version)
    window = ab.decay_window
    baseline = current = None
    decayed = False
    if len(labelled) >= 2 * window:
        first = outcomes(labelled.head(window), metric).mean()
        last = outcomes(labelled.tail(window), metric).mean()
        baseline, current = decision.value(first), decision.value(last)
        drop = baseline - current if decision.higher_is_better else current - baseline
        decayed = drop > ab.decay_limit
        reason = (
            f"{metric} {current:.4f} over the latest {window} records against {baseline:.4f} "
            f"over the first {window}: {'decay' if decayed else 'healthy'} (limit {ab.decay_limit:g})"
        )
    else:
        reason = f"{len(labelled)} records with feedback; {2 * window} needed to compare windows"
    with session_scope(engine) as session:
        previous = session.scalars(
            sa.select(HealthCheck)
            .where(
                HealthCheck.model_name == settings.model.name,
                HealthCheck.model_version == version,
            )
            .order_by(HealthCheck.id.desc())
            .limit(1)
        ).first()
        new_decay = decayed and not (previous is not None and previous.decayed)
        row = HealthCheck(
            model_name=settings.model.name,
            model_version=version,
            metric=metric,
            baseline=baseline,
            current=current,
            samples=len(labelled),
            decayed=decayed,
        )
        session.add(row)
        session.flush()
        check_id = row.id
    return Health(
        check_id, version, metric, baseline, current, len(labelled), decayed, new_decay, reason
    )


def _labelled(engine: sa.Engine, name: str, version: str) -> pd.DataFrame:
    """The version's answered Production records with feedback, oldest first."""
    query = (
        sa.select(Prediction.output, Feedback.value)
        .join(Feedback, Feedback.record_id == Prediction.record_id)
        .where(
            Prediction.model_name == name,
            Prediction.variant == Role.PRODUCTION,
            Prediction.model_version == version,
            Prediction.shadow.is_(False),
            Prediction.status == 200,
        )
        .order_by(Prediction.created_at, Prediction.id)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return pd.DataFrame(
        {
            "prediction": [o.get("prediction") for o, _ in rows],
            "truth": [v for _, v in rows],
        }
    )
