"""What ``paracle-guard authz serve`` adds to ``docker run --rm``: guarded vs unguarded engine.

Starts (as root) two engines with identical flags, data roots and images, one
with ``--authorization-plugin`` (tests/authz/second_engine.py), builds the
busybox probe image in each, warms both up, then times ``docker run --rm`` with
the launcher's flags, alternating guarded and unguarded runs so that load on
the machine falls on both alike. Reports median and p95 wall time of each, the
difference, and the plugin's own decision times from its audit log. Both
engines are stopped and removed at the end.

    sudo .venv/bin/python benchmarks/authz_bench.py --runs 50
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.authz.second_engine import SecondEngine, unavailable_reason  # noqa: E402
from tests.authz.test_guarded_engine import LAUNCHER_FLAGS  # noqa: E402
from tests.docker_images import build  # noqa: E402
from tests.launcher.conftest import probe_spec  # noqa: E402

POLICY = ("apiVersion: paracle-guard/v1\nkind: Policy\nmetadata:\n  name: bench\n"
          "extends: [sandbox]\n")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> dict[str, float]:
    return {"median_ms": round(statistics.median(values) * 1000, 1),
            "p95_ms": round(percentile(values, 0.95) * 1000, 1),
            "min_ms": round(min(values) * 1000, 1), "runs": len(values)}


def one_run(engine: SecondEngine, image: str) -> float:
    clock = time.perf_counter()
    done = engine.docker("run", "--rm", *LAUNCHER_FLAGS, image, "/bin/busybox", "true")
    elapsed = time.perf_counter() - clock
    if done.returncode != 0:
        raise RuntimeError(f"docker run failed on {engine.host}: {done.stderr}")
    return elapsed


def plugin_times(records: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    by_endpoint: dict[str, list[float]] = defaultdict(list)
    for record in records:
        by_endpoint[record["endpoint"]].append(record["duration_ms"] / 1000)
    return {endpoint: summary(values) for endpoint, values in sorted(by_endpoint.items())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    options = parser.parse_args()
    problem = unavailable_reason()
    if problem is not None:
        print(f"authz_bench: {problem}", file=sys.stderr)
        return 2
    folder = Path(tempfile.mkdtemp(prefix="pg-authz-bench-"))
    policy = folder / "bench.yaml"
    policy.write_text(POLICY)
    guarded = SecondEngine(policy=policy)
    plain = SecondEngine(policy=policy, guarded=False)
    try:
        guarded.start()
        plain.start()
        images = {}
        for engine in (guarded, plain):
            client = engine.client()
            # By tag, as people run images: the plugin resolves it on every create.
            images[engine.host] = build(client, probe_spec("authz-bench", "B"),
                                        run_id="bench", workdir=folder, pid=os.getpid()).ref
            client.close()
        for _ in range(options.warmup):
            one_run(guarded, images[guarded.host])
            one_run(plain, images[plain.host])
        audit_mark = len(guarded.audit_records())
        times: dict[str, list[float]] = {"guarded": [], "unguarded": []}
        for _ in range(options.runs):
            times["guarded"].append(one_run(guarded, images[guarded.host]))
            times["unguarded"].append(one_run(plain, images[plain.host]))
        records = guarded.audit_records()[audit_mark:]
        result = {
            "guarded": summary(times["guarded"]),
            "unguarded": summary(times["unguarded"]),
            "added_median_ms": round((statistics.median(times["guarded"])
                                      - statistics.median(times["unguarded"])) * 1000, 1),
            "plugin_decisions_per_run": round(len(records) / options.runs, 1),
            "plugin_decision_ms_per_run": round(
                sum(r["duration_ms"] for r in records) / options.runs, 2),
            "plugin_by_endpoint": plugin_times(records),
            "load_average": os.getloadavg(),
        }
    finally:
        guarded.stop()
        plain.stop()
        subprocess.run(["rm", "-rf", str(folder)], check=False)
    text = json.dumps(result, indent=2)
    print(text)
    if options.json is not None:
        options.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
