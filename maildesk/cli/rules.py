"""Keyword rules from the command line: classify with explanations, evaluate on a labelled folder, lint,
and suggest keywords mined from officers' reclassifications (#service)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from sqlalchemy import select

from maildesk.charter import load_charter
from maildesk.ingest.parse import ParseError, parse_message
from maildesk.rules.classifier import Classifier
from maildesk.rules.evaluate import evaluate, lint, suggest


def _classifier(args):
    from maildesk.cli.core import load

    settings = load(args)
    office = settings.offices[0]
    if getattr(args, "office", None):
        matches = [o for o in settings.offices if o.key == args.office]
        if not matches:
            print(f"no office {args.office!r} in {settings.path}", file=sys.stderr)
            raise SystemExit(2)
        office = matches[0]
    charter = load_charter(office.charter_path)
    return Classifier.from_charter(charter.raw, charter.path), settings


def _classify_file(classifier, path: Path):
    m = parse_message(path.read_bytes())
    return classifier.classify(m.subject, m.text, m.html)


def explain(c, top: int = 3) -> str:
    lines = [f"  → {c.service or 'triage'} (score {c.score:.1f}, margin {c.margin:.1f}; {c.reason})"]
    for code, score in c.ranking[:top]:
        words = [f"{m.matched_text!r}←{m.rule_term!r} [{m.where} {m.weight:+.1f}]" for m in c.matched if m.service == code]
        lines.append(f"    {code:7} {score:6.1f}  " + (", ".join(words) or "-"))
    return "\n".join(lines)


def cmd_classify(args) -> int:
    classifier, _ = _classifier(args)
    status = 0
    for name in args.files:
        try:
            c = _classify_file(classifier, Path(name))
        except (OSError, ParseError) as exc:
            status = 1
            print(json.dumps({"file": name, "error": str(exc)}) if args.json else f"{name}: {exc}")
            continue
        if args.json:
            data = {"file": name, "service": c.service, "score": round(c.score, 3),
                    "matched": sorted({m.matched_text for m in c.matched if m.service == c.service})}
            if args.explain:
                data["explanation"] = c.to_dict()
            print(json.dumps(data, ensure_ascii=False))
        else:
            print(f"{name}: {c.service or 'triage'} (score {c.score:.1f})")
            if args.explain:
                print(explain(c))
    return status


def _labelled(folder: Path):
    labels = folder / "labels.csv"
    if not labels.is_file():
        print(f"{labels} not found: the folder needs a labels.csv with columns file,label", file=sys.stderr)
        raise SystemExit(2)
    with labels.open(encoding="utf-8") as fh:
        return [(row["file"], row["label"]) for row in csv.DictReader(fh)]


def cmd_rules_eval(args) -> int:
    classifier, _ = _classifier(args)
    folder = Path(args.dir)
    pairs = [(f, label, _classify_file(classifier, folder / f)) for f, label in _labelled(folder)]
    report = evaluate(pairs)
    text = report.to_text()
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        print(text)
    if args.output:
        Path(args.output).write_text(f"$ maildesk rules eval {args.dir}\n\n{text}\n", encoding="utf-8")
    return 0


def cmd_rules_lint(args) -> int:
    classifier, _ = _classifier(args)
    results = []
    if args.corpus:
        for f in sorted(Path(args.corpus).glob("*.eml")):
            results.append(_classify_file(classifier, f))
    warnings = lint(classifier.rules, results if args.corpus else None)
    for w in warnings:
        print(w)
    print(f"{len(warnings)} warning(s)")
    return 0


def corrections_from_store(desk):
    """(citizen text, from service, to service) for every #service reclassification an officer made."""
    from maildesk.store.models import Event, Message, Ticket

    out = []
    with desk.sessions() as s:
        for e in s.scalars(select(Event).where(Event.kind == "service").order_by(Event.id)):
            first = s.scalar(select(Message).where(Message.ticket_id == e.ticket_id, Message.kind == "citizen")
                             .order_by(Message.id).limit(1))
            if first is not None:
                data = e.data or {}
                out.append((f"{first.subject}\n{first.text}", data.get("from"), data.get("to")))
    return out


def cmd_rules_suggest(args) -> int:
    from maildesk.cli.core import open_desk

    desk = open_desk(args)
    try:
        corrections = corrections_from_store(desk)
        classifier = next(iter(desk.offices.values())).classifier
    finally:
        desk.close()
    rows = suggest(corrections, classifier.rules, min_count=args.min_count)
    print(f"{len(corrections)} reclassification(s) by officers")
    for service, term, count in rows:
        print(f"  {service:7} {term!r:30} seen in {count} corrected message(s)")
    if not rows:
        print("  no candidate keywords yet")
    return 0


def register(sub) -> None:
    p = sub.add_parser("classify", help="which service each message would be routed to, and why")
    p.add_argument("files", nargs="+", metavar="FILE.eml")
    p.add_argument("--json", action="store_true", help="one JSON object per line: file, service, score, matched")
    p.add_argument("--explain", action="store_true", help="top services with scores and the exact words matched")
    p.add_argument("--office")
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser("rules", help="evaluate, lint and improve the keyword rules")
    rs = p.add_subparsers(dest="rules_command", required=True)
    e = rs.add_parser("eval", help="accuracy, per-service P/R/F1, confusion matrix on a labelled folder")
    e.add_argument("dir", help="folder of .eml files with labels.csv (file,label)")
    e.add_argument("--json", action="store_true")
    e.add_argument("--output", help="also write the text report to this file")
    e.add_argument("--office")
    e.set_defaults(func=cmd_rules_eval)
    lp = rs.add_parser("lint", help="keywords shared by services, keywords that never matched")
    lp.add_argument("--corpus", help="folder of .eml to find keywords that never match")
    lp.add_argument("--office")
    lp.set_defaults(func=cmd_rules_lint)
    sp = rs.add_parser("suggest", help="candidate keywords from officers' #service corrections")
    sp.add_argument("--min-count", type=int, default=2)
    sp.set_defaults(func=cmd_rules_suggest)
