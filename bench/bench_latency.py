"""Delivery -> acknowledgement: how long a citizen waits for the desk's answer, with IMAP IDLE.

A real worker (`maildesk run`, a subprocess) watches a Dovecot mailbox with IDLE. Each message is
delivered over LMTP, as the office's mail server would deliver it; the clock runs from the end of that
delivery until the SMTP server (aiosmtpd on 127.0.0.1, in this process) has accepted the acknowledgement.
Messages go one at a time, each from its own citizen. Dovecot itself delays IDLE notifications by about
0.5 s.

    python bench/bench_latency.py [--n 100] [--store sqlite|postgres]
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common  # noqa: E402
from tests import servers  # noqa: E402
from tests.helpers import write_offices  # noqa: E402


PAUSE = 1.0


def request(i: int, to: str) -> tuple[str, bytes]:
    m = EmailMessage()
    mid = f"<latency-{i}-{time.time_ns()}@example.com>"
    m["From"] = f"নাগরিক {i} <citizen-{i}@example.com>"
    m["To"] = to
    m["Subject"] = "ইন্টারনেট সংযোগ নেই / internet down"
    m["Message-ID"] = mid
    m.set_content("আমাদের ইউনিয়ন পরিষদের ইন্টারনেট সংযোগ বন্ধ। দয়া করে ব্যবস্থা নিন। Please help.")
    return mid, bytes(m)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--store", default="sqlite", choices=("sqlite", "postgres"))
    args = ap.parse_args(argv)
    env = common.servers_env()
    folder = common.workdir("latency")
    box = servers.new_imap_account(env, "desk")
    capture = servers.SmtpCapture().start()
    lmtp_env = env
    with common.database(args.store, folder, env) as url:
        config = write_offices(folder / "config", {"khaliajuri": box.url("imap")}, smtp_url=capture.url,
                               database_url=url, ca_file=env["MAILDESK_TEST_CA"], idle=True, poll_seconds=60,
                               send_seconds=30)
        log = open(folder / "worker.log", "wb")
        worker = subprocess.Popen([sys.executable, "-m", "maildesk", "--config", str(config), "run"],
                                  stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  cwd=str(common.ROOT))
        try:
            waits, rng = [], random.Random(7)
            for i in range(args.n + 3):  # the first three warm the worker up and are not counted
                mid, raw = request(i, box.address)
                servers.lmtp_deliver(lmtp_env, box.address, raw, mail_from=f"citizen-{i}@example.com")
                delivered = time.monotonic()
                ack = capture.wait_until(lambda m, mid=mid: b"In-Reply-To: " + mid.encode() in m.data,
                                         timeout=60 if i < 3 else 30)
                if i >= 3:
                    waits.append(ack.at - delivered)
                # Citizens write at any moment, mostly while the worker idles: let it finish the notice
                # and go back to IDLE, then deliver the next one at a random point within a second.
                time.sleep(PAUSE + rng.random() if PAUSE else 0)
        finally:
            worker.terminate()
            worker.wait(30)
            log.close()
            capture.stop()
            servers.remove_account(box)
    result = {"n": len(waits), "store": args.store, "median": common.median(waits),
              "p95": common.percentile(waits, 95), "max": max(waits), "min": min(waits)}
    print(f"delivery -> acknowledgement accepted by SMTP ({args.store}, IDLE, {len(waits)} messages): "
          f"median {result['median']:.2f} s, p95 {result['p95']:.2f} s, min {result['min']:.2f} s, "
          f"max {result['max']:.2f} s")
    return result


if __name__ == "__main__":
    main()
