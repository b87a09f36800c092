"""Measure the keyword rules: accuracy, per-service F1, confusions, and advice for the clerk.

Routing is only as good as its rules, and rules drift as the office edits them. These pure functions
turn a labelled corpus (or an officer's corrections) into numbers and concrete suggestions; the CLI
and the database are wired elsewhere.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from maildesk.rules.classifier import NONE, Classification, strip_quoted_for_classification
from maildesk.rules.keywords import RuleSet
from maildesk.rules.normalize import bn_stems, en_stems, fold_bn, is_bengali, tokenize

__all__ = ["LabelStats", "Misroute", "Report", "evaluate", "LintWarning", "lint", "suggest", "label_order"]


def label_order(label: str) -> tuple:
    """Charter order: 2.1.1 < 2.1.2 < ... < 2.2.11, then "none"."""
    if label == NONE:
        return (1, ())
    try:
        return (0, tuple(int(p) for p in label.split(".")))
    except ValueError:
        return (0, (999,), label)


@dataclass(frozen=True)
class LabelStats:
    label: str
    precision: float
    recall: float
    f1: float
    support: int  # messages with this expected label
    predicted: int  # messages routed to this label


@dataclass(frozen=True)
class Misroute:
    file: str
    expected: str
    got: str
    classification: Classification

    def to_dict(self) -> dict:
        return {"file": self.file, "expected": self.expected, "got": self.got,
                "classification": self.classification.to_dict()}


@dataclass
class Report:
    total: int
    correct: int
    accuracy: float
    macro_f1: float
    labels: list[str]
    per_label: dict[str, LabelStats]
    confusion: dict[str, dict[str, int]]  # expected -> routed -> count
    misrouted: list[Misroute]
    confident_out_of_scope: list[str] = field(default_factory=list)  # "none" mail routed confidently

    def to_dict(self) -> dict:
        return {
            "total": self.total,
            "correct": self.correct,
            "accuracy": round(self.accuracy, 4),
            "macro_f1": round(self.macro_f1, 4),
            "labels": self.labels,
            "per_label": {k: {"precision": round(v.precision, 4), "recall": round(v.recall, 4),
                              "f1": round(v.f1, 4), "support": v.support, "predicted": v.predicted}
                          for k, v in self.per_label.items()},
            "confusion": self.confusion,
            "misrouted": [m.to_dict() for m in self.misrouted],
            "confident_out_of_scope": self.confident_out_of_scope,
        }

    def to_text(self, matches_shown: int = 6) -> str:
        lines = [
            f"Classifier evaluation: {self.total} messages, {len(self.labels)} labels",
            f"accuracy {self.accuracy:.3f} ({self.correct}/{self.total})   macro-F1 {self.macro_f1:.3f}",
            f"out-of-scope mail routed with high confidence: {len(self.confident_out_of_scope)}"
            + (f" ({', '.join(self.confident_out_of_scope)})" if self.confident_out_of_scope else ""),
            "",
            f"{'label':<8}{'prec':>7}{'recall':>8}{'F1':>7}{'n':>5}{'routed':>8}",
        ]
        for label in self.labels:
            s = self.per_label[label]
            lines.append(f"{label:<8}{s.precision:>7.2f}{s.recall:>8.2f}{s.f1:>7.2f}{s.support:>5}{s.predicted:>8}")
        lines += ["", "confusion (rows: expected, columns: routed; only non-zero rows shown off the diagonal)"]
        head = "".join(f"{_short(c):>6}" for c in self.labels)
        lines.append(f"{'':<8}{head}")
        for gold in self.labels:
            row = self.confusion.get(gold, {})
            cells = "".join(f"{(row.get(c) or '.')!s:>6}" for c in self.labels)
            lines.append(f"{gold:<8}{cells}")
        if self.misrouted:
            lines += ["", f"misrouted ({len(self.misrouted)}):"]
        for m in self.misrouted:
            c = m.classification
            rank = ", ".join(f"{code} {score:g}" for code, score in c.ranking) or "nothing matched"
            lines.append(f"  {m.file}: expected {m.expected}, got {m.got} "
                         f"(score {c.score:g}, margin {c.margin:g}; {c.reason})")
            lines.append(f"      ranking: {rank}")
            for match in c.matched[:matches_shown]:
                lines.append(f"      {match.service:<7} {match.weight:+g} {match.where:<7} "
                             f"{match.rule_term!r} ~ {match.matched_text!r}")
        return "\n".join(lines)


def _short(label: str) -> str:
    return label[2:] if label.startswith("2.") else label


def _div(a: float, b: float) -> float:
    return a / b if b else 0.0


def evaluate(pairs, labels: list[str] | None = None) -> Report:
    """Score classifications against expected labels.

    pairs: iterable of (file, expected_label, Classification); "none" is the expected label for mail
    that should go to triage. Macro-F1 averages over `labels` (default: every label that is expected
    or predicted).
    """
    pairs = list(pairs)
    confusion: dict[str, Counter] = defaultdict(Counter)
    misrouted: list[Misroute] = []
    confident_oos: list[str] = []
    for file, expected, c in pairs:
        got = c.label
        confusion[expected][got] += 1
        if got != expected:
            misrouted.append(Misroute(file, expected, got, c))
            if expected == NONE and c.confident:
                confident_oos.append(file)
    if labels is None:
        present = set(confusion) | {g for row in confusion.values() for g in row}
        labels = sorted(present, key=label_order)
    per_label: dict[str, LabelStats] = {}
    for label in labels:
        tp = confusion[label][label]
        support = sum(confusion[label].values())
        predicted = sum(row[label] for row in confusion.values())
        p, r = _div(tp, predicted), _div(tp, support)
        per_label[label] = LabelStats(label, p, r, _div(2 * p * r, p + r), support, predicted)
    correct = sum(confusion[l][l] for l in confusion)
    total = len(pairs)
    return Report(
        total=total,
        correct=correct,
        accuracy=_div(correct, total),
        macro_f1=_div(sum(s.f1 for s in per_label.values()), len(per_label)),
        labels=list(labels),
        per_label=per_label,
        confusion={g: dict(sorted(row.items(), key=lambda kv: label_order(kv[0])))
                   for g, row in sorted(confusion.items(), key=lambda kv: label_order(kv[0]))},
        misrouted=sorted(misrouted, key=lambda m: (label_order(m.expected), m.file)),
        confident_out_of_scope=confident_oos,
    )


# --- lint -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LintWarning:
    kind: str  # 'shared' | 'unused' | 'empty'
    key: str  # dotted config key of the rule
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


def lint(rules: RuleSet, classifications=None) -> list[LintWarning]:
    """Warn about keywords that several services share and keywords that never counted on a corpus.

    A shared keyword is not always wrong (a word can point to two services with different weights),
    but the clerk should know; an unused keyword may be misspelt or never typed by real senders.
    """
    warnings: list[LintWarning] = []
    by_words: dict[tuple, list] = defaultdict(list)
    for t in rules.terms:
        if not t.negative:
            by_words[(t.lang, t.words)].append(t)
    for (_, _words), terms in by_words.items():
        services = sorted({t.service for t in terms}, key=label_order)
        if len(services) > 1:
            for t in terms:
                others = [s for s in services if s != t.service]
                warnings.append(LintWarning("shared", t.key,
                                            f"{t.text!r} is also a keyword of {', '.join(others)}"))
    for code in rules.services:
        if not any(t.service == code and not t.negative for t in rules.terms):
            warnings.append(LintWarning("empty", f"services.{code}.keywords",
                                        "no keywords: nothing can route mail to this service"))
    classifications = list(classifications or ())  # None: no corpus, so no "unused" warnings
    if classifications:
        used = {(m.service, m.rule_term) for c in classifications for m in c.matched}
        for t in rules.terms + rules.out_of_scope:
            if (t.service, t.text) not in used:
                warnings.append(LintWarning("unused", t.key,
                                            f"{t.text!r} never counted on these {len(classifications)} messages"))
    return warnings


# --- suggest --------------------------------------------------------------------------------------

_STOP = set("""
a an and are as at be been but by can could do for from had has have how i if in is it its me my no not
of on or our please regards sir so that the their them there this to us was we were what when where which
who will with would you your dear thanks thank hello hi kindly sincerely best also any all some one two
ami amar amader apnar apni apnara apnader ki na ar r er e te kore korte korbo hoy hobe hocche ache nai
nei chai jonno theke diye niye kintu ba ekta kono kon jabe valo bhalo dorkar plz pls ta ti o je tai ei
oi eta shob sob kichu ektu jodi tahole
ও এবং আর কি কী না আমি আমার আমাদের আপনার আপনি আপনাদের স্যার জনাব এই সেই যে করে করতে করা হয় হয়ে
হবে হচ্ছে জন্য থেকে দিয়ে নিয়ে কিন্তু বা তার তা এটা সেটা একটা একটি কোন কোনো যায় যাবে চাই দরকার দিন দিলে
ভালো হলে পারি পারেন অনুরোধ বিষয়ে বিষয় প্রসঙ্গে মহোদয় বিনীত নিবেদন এ উক্ত হলো করা হলো যাচ্ছে জানানো
উপর্যুক্ত প্রেক্ষিতে এমতাবস্থায় অতএব প্রদান প্রদানের জানাবেন একটু খুব অনেক কিছু সব তিনি তাঁর তাদের
""".split())
_SAFE_BN_ENDINGS = ("গুলোতে", "গুলোর", "গুলো", "সমূহের", "সমূহ", "দের", "য়ের", "ের", "তে", "কে", "টি", "টা", "ে")


def _candidate(token: str) -> str | None:
    if token in _STOP or token.isdigit() or len(token) < 3:
        return None
    if is_bengali(token):
        for end in _SAFE_BN_ENDINGS:
            if token.endswith(end) and len(token) - len(end) >= 3:
                token = token[: -len(end)]
                break
        return None if token in _STOP else token
    return token


def suggest(corrections, rules: RuleSet | None = None, min_count: int = 2, limit: int = 10):
    """Candidate keywords mined from officers' reclassifications.

    corrections: iterable of (text, from_service, to_service), the text being what the citizen wrote
    (subject and body). A word or two-word phrase is suggested for `to_service` when it appears in at
    least `min_count` messages moved there and in fewer messages moved to any other service. Words that
    are already keywords of that service (when `rules` is given) are left out. Returns up to `limit`
    (service, candidate_term, count) per service, most frequent first.
    """
    doc_freq: dict[str, Counter] = defaultdict(Counter)
    for text, _from, to in corrections:
        if not to or to == NONE:
            continue
        words = [_candidate(t) for t in tokenize(strip_quoted_for_classification(text))]
        grams = {w for w in words if w}
        grams |= {f"{a} {b}" for a, b in zip(words, words[1:]) if a and b}
        doc_freq[to].update(grams)
    known: dict[str, set] = defaultdict(set)
    if rules is not None:
        for t in rules.terms:
            if not t.negative and len(t.words) == 1:
                known[t.service].add(fold_bn(t.words[0]) if t.lang == "bn" else t.words[0])
    out = []
    for service, counts in doc_freq.items():
        rows = []
        for term, n in counts.items():
            if n < min_count:
                continue
            elsewhere = max((c[term] for s, c in doc_freq.items() if s != service), default=0)
            if elsewhere >= n:
                continue
            first = term.split(" ")[0]
            forms = bn_stems(first) if is_bengali(first) else en_stems(first)
            if " " not in term and known[service] & set(forms):
                continue
            rows.append((service, term, n))
        rows.sort(key=lambda r: (-r[2], -len(r[1].split(" ")), r[1]))
        out.extend(rows[:limit])
    out.sort(key=lambda r: (label_order(r[0]), -r[2], r[1]))
    return out
