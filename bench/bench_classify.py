"""How fast the keyword classifier routes mail: classify 1,000 messages and print messages per second.

The messages are the dev corpus, parsed once and repeated; only classification is timed, because
that is the part that runs for every incoming message. Target: well under one second per 1,000.

    python bench/bench_classify.py [N]
"""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from maildesk.rules.classifier import Classifier  # noqa: E402
from maildesk.rules.eml import subject_and_bodies  # noqa: E402


def main(n: int = 1000) -> None:
    charter = ROOT / "config" / "charter.yaml"
    t0 = time.perf_counter()
    classifier = Classifier.from_charter(yaml.safe_load(charter.read_text(encoding="utf-8")), charter)
    build = time.perf_counter() - t0
    corpus = ROOT / "tests" / "data" / "corpus-dev"
    with open(corpus / "labels.csv", encoding="utf-8") as f:
        files = [row["file"] for row in csv.DictReader(f)]
    messages = [subject_and_bodies((corpus / name).read_bytes()) for name in files]
    batch = [messages[i % len(messages)] for i in range(n)]
    chars = sum(len(s) + len(t or h or "") for s, t, h in batch)

    # a fresh classifier per run, so the per-word cache starts cold as in a new process
    # wall time, and CPU time too: on a shared machine the CPU time is the steadier figure
    runs, cpu = [], []
    for _ in range(3):
        fresh = Classifier(classifier.rules)
        t0, c0 = time.perf_counter(), time.process_time()
        for subject, text, html in batch:
            fresh.classify(subject, text, html)
        runs.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    best, best_cpu = min(runs), min(cpu)
    print(f"rules: {len(classifier.rules.terms) + len(classifier.rules.out_of_scope)} terms, built in {build * 1000:.1f} ms")
    print(f"classified {n} messages ({chars / n:.0f} characters on average) in {best:.3f} s wall, "
          f"{best_cpu:.3f} s CPU (best of {len(runs)}): {n / best:,.0f} msgs/s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
