"""Latency of a deployed table model's `/invocations` over real HTTP on loopback: one row with its features, one
row by entity key (the features read from the online store), and batches of 100 rows; p50/p99 of each and the
ratio of the entity-key path to the plain one (what the online read adds). The model is the tests' tiny churn
LightGBM, made in a temporary workspace that is removed afterwards.

    .venv/bin/python bench/tabular_invocations.py [--requests 300]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from core.offline import apply_offline_env  # noqa: E402


def timed(client, url, headers, body, n):
    out = []
    for _ in range(n):
        t = time.perf_counter()
        r = client.post(url, json=body, headers=headers)
        out.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, r.text
    return np.percentile(out, [50, 99])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    apply_offline_env()
    import httpx

    from runtimes.serving.endpoints import deploy as endpoints
    from tests.tabular_models import NAME, churn_model

    with tempfile.TemporaryDirectory() as tmp:
        ws, frame = churn_model(Path(tmp))
        d = endpoints.deploy(ws, [NAME], name="bench", start_timeout_s=300)
        try:
            url, headers = f"{d.endpoint.base_url}/invocations", {"Authorization": f"Bearer {d.api_key}"}
            rows = frame[["customer_id", "segment", "orders_90d", "spend_90d"]].head(100)
            records = [{"customer_id": int(r.customer_id), "segment": r.segment, "orders_90d": int(r.orders_90d),
                        "spend_90d": float(r.spend_90d)} for r in rows.itertuples()]
            with httpx.Client(timeout=30) as client:
                timed(client, url, headers, {"dataframe_records": records[:1]}, 20)  # warm both paths
                timed(client, url, headers, {"dataframe_records": [{"customer_id": 1, "segment": "pro"}]}, 20)
                plain = timed(client, url, headers, {"dataframe_records": records[:1]}, args.requests)
                keyed = timed(client, url, headers, {"dataframe_records": [{"customer_id": 1, "segment": "pro"}]},
                              args.requests)
                batch = timed(client, url, headers, {"dataframe_records": records}, max(20, args.requests // 10))
        finally:
            endpoints.delete(ws, "bench")
    print(f"one row, features sent:     p50 {plain[0]:6.2f} ms  p99 {plain[1]:6.2f} ms")
    print(f"one row, by entity key:     p50 {keyed[0]:6.2f} ms  p99 {keyed[1]:6.2f} ms")
    print(f"100 rows, features sent:    p50 {batch[0]:6.2f} ms  p99 {batch[1]:6.2f} ms "
          f"({batch[0] / 100:.3f} ms a row)")
    print(f"entity key / features sent, p50: {keyed[0] / plain[0]:.2f}x")


if __name__ == "__main__":
    main()
