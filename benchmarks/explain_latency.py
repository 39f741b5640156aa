"""``/explain`` latency for one record (issue 17, item 5), beside ``/predict`` on the same model.

Bootstraps a home with PyCaret (one model kind per run, ``--model``), builds the Flask app
in-process (no gunicorn, no network: the figure is the explanation's own cost plus Flask's),
then times ``--requests`` one-record ``/predict`` and ``/explain`` requests, interleaved.

Usage: ``.venv/bin/python benchmarks/explain_latency.py --model rf --requests 200``
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from support.common import CONFIG, add_smoke
from support.homes import smoke_home


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="rf", help="PyCaret model id")
    parser.add_argument("--requests", type=int, default=200)
    add_smoke(parser, "10 requests each, on the shared smoke home (a decision tree)")
    args = parser.parse_args()
    from driftloop.schema import upgrade
    from driftloop.settings_loader import load_settings
    from driftloop.stages import retrain as steps
    from driftloop.storage import make_engine
    from serving.app import create_app

    with tempfile.TemporaryDirectory() as home:
        if args.smoke:
            settings, args.requests, args.model = smoke_home(), 10, "dt (smoke home)"
        else:
            settings = load_settings(
                CONFIG,
                storage={"home": Path(home)},
                training={"models": [args.model], "folds": 3, "budget_minutes": 1.0},
            )
            engine = make_engine(settings.database_url)
            upgrade(engine)
            steps.bootstrap(settings, engine)
        os.environ.setdefault("DRIFTLOOP_ADMIN_TOKEN", "bench")
        app = create_app(settings, background=False)
        client = app.test_client()
        frame = pd.read_csv(settings.data.path, sep=settings.data.separator)
        records = frame[settings.feature_columns].sample(args.requests, random_state=0)
        times: dict[str, list[float]] = {"/predict": [], "/explain": []}
        method = ""
        for record in records.to_dict("records"):
            for path in times:
                started = time.perf_counter()
                response = client.post(path, json={"record": record})
                times[path].append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, response.json
                method = response.json.get("method", method)
        app.extensions["driftloop"]["shutdown"]()
        print(f"model {args.model}; explainer: {method}; {args.requests} one-record requests each")
        for path, values in times.items():
            p50, p99 = np.percentile(values, [50, 99])
            print(f"{path:9} p50 {p50:7.1f} ms  p99 {p99:7.1f} ms")


if __name__ == "__main__":
    main()
