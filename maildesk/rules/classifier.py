"""Route a message to a Citizen Charter service with the office's keyword rules, and say why.

Scoring, in words a clerk can check against the explanation stored on the ticket:
  * every rule that matches adds its weight once for the subject (times `subject_weight`, or
    `reply_subject_weight` for a "Re:"/"Fwd:" subject) and once for the body, however often the
    words repeat;
  * where a longer phrase and a shorter one match the same words, only the longer phrase counts;
  * a one-word rule also matches the word typed in two ("web site" = website, "ই মেইল" = ইমেইল), and a
    rule with a negated verb matches the না typed onto the verb ("চালু হয় না" = "চালু হয়না", "hoy na" = hoina);
  * with `damp_parts`, a body rule whose words lie inside a longer rule of the same service that
    counted elsewhere adds nothing ("শেখ রাসেল" after "শেখ রাসেল ডিজিটাল ল্যাব");
  * a service's `not` words take their weight off that service and cancel its rules on those words,
    unless a longer rule of the same service holds them ("service centre" inside "union information
    and service centre");
  * with `body_overrules_subject`, a service whose body score is below zero (its `not` words there
    outweigh its own) gets its subject words at body weight;
  * `absorb` lets a place with its own service (a school lab, a UDC) take over the score of general
    services (a device fault, a line, buying advice) once it reaches `min_score` by its own words;
  * the `classifier.out_of_scope` words score for "none" (the office does not handle it); its `not`
    words (an office writing about its own work: "amader UP", "আমাদের দপ্তর") take weight off that score;
  * a forwarded message's text counts with the forwarder's own words (`read_forwarded`);
  * the best service wins only with at least `min_score` and a lead of `min_margin` over the
    runner-up and over the out-of-scope score; otherwise the message goes to triage (service None);
  * a thank-you note goes to triage whatever services it names: words of thanks
    (`classifier.thanks_only.thanks`) with no question mark and none of the words that ask for
    something or report a new problem (`classifier.thanks_only.unless`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import translate as _glob_to_regex

from maildesk.rules.keywords import GAP, GAP_WORDS, THANKS, UNLESS, RuleSet, Term, load_rules
from maildesk.rules.normalize import (
    banglish_key,
    banglish_stems,
    bn_stems,
    en_stems,
    fold_bn,
    html_to_text,
    is_bengali,
    tokenize,
)

__all__ = ["Match", "Classification", "Classifier", "strip_quoted_for_classification", "NONE"]

NONE = "none"  # the label for mail the office does not handle (triage)
_NOTE_WORDS = (THANKS, UNLESS)  # rules that describe the message, not a service
THANKS_ONLY = "a thank-you with no question or request"


@dataclass(frozen=True)
class Match:
    """One rule that counted: which service, the rule as written, the words it matched, where, how much."""

    service: str
    rule_term: str
    matched_text: str
    where: str  # 'subject' | 'body'
    weight: float  # what it added to the score (negative for `not` words)

    def to_dict(self) -> dict:
        return {"service": self.service, "rule_term": self.rule_term, "matched_text": self.matched_text,
                "where": self.where, "weight": round(self.weight, 3)}


@dataclass(frozen=True)
class Classification:
    """The routing decision with everything needed to explain it."""

    service: str | None  # service code, or None = triage
    score: float  # score of the best service
    margin: float  # best score minus the strongest competitor (runner-up or out-of-scope)
    ranking: tuple[tuple[str, float], ...]  # top services (and "none") with their scores
    matched: tuple[Match, ...]
    reason: str = ""  # why it went to triage, or "routed"
    confident: bool = False  # routed with a clear score and lead (see classifier settings)
    candidate: str | None = None  # the best service even when the message went to triage

    @property
    def label(self) -> str:
        """The service code, or "none" when the message goes to triage."""
        return self.service or NONE

    def to_dict(self) -> dict:
        return {
            "service": self.service,
            "score": round(self.score, 3),
            "margin": round(self.margin, 3),
            "confident": self.confident,
            "reason": self.reason,
            "candidate": self.candidate,
            "ranking": [[code, round(score, 3)] for code, score in self.ranking],
            "matched": [m.to_dict() for m in self.matched],
        }


# --- quoted text and signatures -----------------------------------------------------------------

_ATTRIBUTION = re.compile(r"^(on\b.{0,300}\bwrote|.{0,300}লিখেছেন)\s*:?\s*$", re.IGNORECASE)
_ON_LINE = re.compile(r"^on\s.{6,}", re.IGNORECASE)
_WROTE_END = re.compile(r"\bwrote:\s*$", re.IGNORECASE)
_REPLY_PREFIX = re.compile(r"^\s*(re|fw|fwd|aw|sv|wg)\s*(\[\d+\])?\s*:", re.IGNORECASE)
_FORWARD_PREFIX = re.compile(r"^\s*(fw|fwd|wg)\s*(\[\d+\])?\s*:", re.IGNORECASE)
_ORIGINAL = re.compile(r"^-{3,}\s*(original message|forwarded message)\s*-{3,}$", re.IGNORECASE)
# Where a forwarded message starts: Gmail (English and Bengali UI), Apple Mail, Thunderbird.
_FORWARDED = re.compile(r"^(-{3,}\s*(forwarded message|original message|ফরওয়ার্ড করা (মেসেজ|বার্তা))\s*-{3,}"
                        r"|begin forwarded message:?)$", re.IGNORECASE)
# A mail client's own line under the message ("Sent from my Redmi", "Get Outlook for Android"): it names a
# phone or a program the sender did not write about.
_CLIENT_SIGNATURE = re.compile(r"^(sent from my\b|sent from (yahoo )?mail\b|get outlook for\b|sent via\b)",
                               re.IGNORECASE)
_OUTLOOK_ORIGINAL = re.compile(r"^-{3,}\s*original message\s*-{3,}$", re.IGNORECASE)
# The header block a client writes above the forwarded text: who, when, to whom, the old subject.
_FORWARD_HEADER = re.compile(r"^\W{0,2}(from|sent|date|to|cc|bcc|subject|reply-to|প্রেরক|প্রতি|তারিখ|প্রাপক|বিষয়)"
                             r"\W{0,2}\s*:", re.IGNORECASE)


def strip_quoted_for_classification(text: str | None, keep_forwarded: bool = False,
                                    forward: bool = False) -> str:
    """Drop '>' quoted lines, a mail client's "Sent from my ..." line, and everything from a '-- '
    signature or an "On ... wrote:" line on.

    Conservative on purpose: it only cuts at markers that mail clients put there, so the citizen's own
    words are never lost; earlier messages and signatures must not decide the routing.

    With `keep_forwarded`, a forwarded message is not an earlier message: the forwarder's line says
    what is wanted and the forwarded text says what it is about, so both are kept, without the
    From/Date/To/Subject block the mail client puts above the forwarded text. Gmail's and Apple
    Mail's forward markers always start a forward; Outlook's "-----Original Message-----" does
    only when the subject says the message is forwarded (`forward`: "Fw:"/"Fwd:"), because Outlook
    puts the same line above a quoted reply.
    """
    if not text:
        return ""
    lines = text.splitlines()
    out: list[str] = []
    header = False  # inside the header block of a forwarded message
    for i, line in enumerate(lines):
        stripped = line.strip()
        if header:
            if not stripped or _FORWARD_HEADER.match(stripped):
                continue
            header = False
        if line.rstrip("\r\n") in ("-- ", "--"):
            break
        if keep_forwarded and _FORWARDED.match(stripped) and (forward or not _OUTLOOK_ORIGINAL.match(stripped)):
            header = True
            continue
        if _ORIGINAL.match(stripped) or _ATTRIBUTION.match(stripped):
            break
        if _ON_LINE.match(stripped) and i + 1 < len(lines) and _WROTE_END.search(lines[i + 1]) \
                and len(lines[i + 1]) < 200:
            break
        if stripped.startswith(">") or _CLIENT_SIGNATURE.match(stripped):
            continue
        out.append(line)
    return "\n".join(out).strip()


# --- compiled rules ------------------------------------------------------------------------------

@dataclass
class _Compiled:
    term: Term
    index: int
    patterns: tuple  # per word: str key, compiled regex for a wildcard word, or None for a gap
    needs: frozenset = frozenset()  # (mode, key) of the plain words after the first: a quick pre-check


_MODES = ("bn", "en", "banglish")
_JOIN_MIN = 5  # letters in a word typed in two before the halves are read as one word


def _word_key(word: str, mode: str) -> str:
    if mode == "bn":
        return fold_bn(word)
    if mode == "banglish":
        return banglish_key(word)
    return word


def _glob(word: str, mode: str):
    pieces = [_word_key(p, mode) if p else "" for p in word.split("*")]
    return re.compile(_glob_to_regex("*".join(pieces)))


# "না" is written apart from its verb (হয় না, hoy na) but often typed onto it (হয়না, hoyna, hoina). A rule
# with a negated verb also matches the two typed as one word: "চালু হয় না" matches "চালু হয়না".
_NEGATION = {"bn": "না", "banglish": "na"}


def _glued_negation(words: tuple[str, ...], lang: str) -> tuple[str, ...] | None:
    """The rule's words with each "না"/"na" glued to the word before it, or None if it has none."""
    neg = _NEGATION.get(lang)
    if not neg or neg not in words[1:]:
        return None
    out: list[str] = []
    for w in words:
        if w == neg and out and out[-1] != GAP and "*" not in out[-1]:
            out[-1] += w
        else:
            out.append(w)
    return tuple(out) if len(out) < len(words) else None


class _Token:
    """A text word with its matching forms and the rules it can start; immutable, so one object
    serves every occurrence of the word."""

    __slots__ = ("text", "forms", "base", "keys", "starts")

    def __init__(self, text: str, suffixes: tuple[str, ...]):
        self.text = text
        if is_bengali(text):
            self.forms = {"bn": bn_stems(text, suffixes)}
            self.base = {"bn": fold_bn(text)}
        else:
            self.forms = {"en": en_stems(text), "banglish": banglish_stems(text)}
            self.base = {"en": text, "banglish": banglish_key(text)}
        self.keys = frozenset((mode, f) for mode, forms in self.forms.items() for f in forms)


@dataclass
class _Found:
    rule: _Compiled
    start: int
    end: int
    where: str


class Classifier:
    """Keyword classifier built once from the charter rules; `classify` is pure and thread-safe."""

    def __init__(self, rules: RuleSet):
        self.rules = rules
        self.settings = rules.settings
        self._suffixes = tuple(self.settings.bn_suffixes)
        self._compiled: list[_Compiled] = []
        self._index: dict[tuple[str, str], list[tuple[_Compiled, bool]]] = {}
        self._globs: dict[tuple[str, str], list[_Compiled]] = {}
        self._cache: dict[str, _Token] = {}
        for i, term in enumerate(rules.terms + rules.out_of_scope + rules.thanks + rules.unless):
            self._add(term, i)

    @property
    def warnings(self) -> list[str]:
        """Problems worth telling the clerk at `check-config`: services no rule can reach, and strong
        keywords (weight 3 or more) that point at two services at once. `evaluate.lint` says more."""
        out = []
        strong: dict[tuple, list[Term]] = {}
        for t in self.rules.terms:
            if not t.negative and t.weight >= 3:
                strong.setdefault((t.lang, t.words), []).append(t)
        for terms in strong.values():
            if len({t.service for t in terms}) > 1:
                out.append(f"{', '.join(t.key for t in terms)}: strong keyword {terms[0].text!r} "
                           f"points at {len(terms)} services")
        for code in self.rules.services:
            if not any(t.service == code and not t.negative for t in self.rules.terms):
                out.append(f"services.{code}.keywords: no keywords, so no mail can reach this service")
        return out

    @classmethod
    def from_charter(cls, charter_raw: dict, source_file) -> "Classifier":
        """Build from `yaml.safe_load(config/charter.yaml)`; config errors raise ConfigError."""
        return cls(load_rules(charter_raw, source_file))

    def _add(self, term: Term, i: int) -> None:
        self._add_words(term, i, term.words, join=True)
        glued = _glued_negation(term.words, term.lang)
        if glued:
            self._add_words(term, i, glued, join=False)

    def _add_words(self, term: Term, i: int, words: tuple[str, ...], join: bool) -> None:
        mode = term.lang
        pats = tuple(None if w == GAP else _glob(w, mode) if "*" in w else _word_key(w, mode)
                     for w in words)
        needs = frozenset((mode, p) for p in pats[1:] if isinstance(p, str))
        rule = _Compiled(term, i, pats, needs)
        self._compiled.append(rule)
        first = pats[0]
        if isinstance(first, str):
            self._index.setdefault((mode, first), []).append((rule, False))
        else:
            prefix = words[0].split("*")[0]
            self._globs.setdefault((mode, _word_key(prefix, mode)[:1]), []).append(rule)
        # A phrase also matches when typed as one word: "e nothi" = "enothi", "info sarkar" = "infosarkar".
        if join and 2 <= len(pats) <= 3 and all(isinstance(p, str) for p in pats) and GAP not in words:
            joined = _word_key("".join(words), mode)
            self._index.setdefault((mode, joined), []).append((rule, True))

    # -- matching --

    def _token(self, text: str) -> _Token:
        tok = self._cache.get(text)
        if tok is None:
            tok = _Token(text, self._suffixes)
            starts = []  # (rule, mode, joined): rules whose first word (or joined phrase) is this word
            for mode, forms in tok.forms.items():
                for form in forms:
                    starts.extend((rule, mode, joined) for rule, joined in self._index.get((mode, form), ()))
                base = tok.base[mode]
                starts.extend((rule, mode, False) for rule in self._globs.get((mode, base[:1]), ())
                              if rule.patterns[0].fullmatch(base))
            tok.starts = tuple(starts)
            self._cache[text] = tok  # only complete tokens are shared
        return tok

    def _word_matches(self, pat, mode: str, tok: _Token) -> bool:
        forms = tok.forms.get(mode)
        if not forms:
            return False
        if isinstance(pat, str):
            return pat in forms
        return pat.fullmatch(tok.base[mode]) is not None

    def _find(self, tokens: list[_Token], where: str) -> list[_Found]:
        found: dict[tuple[int, int, int], _Found] = {}
        n = len(tokens)
        present = frozenset().union(*(t.keys for t in tokens)) if tokens else frozenset()
        for i, tok in enumerate(tokens):
            for rule, mode, joined in tok.starts:
                if joined or len(rule.patterns) == 1:
                    end = i + 1
                elif not rule.needs <= present:
                    continue
                else:
                    end = self._extend(rule, mode, tokens, i, n)
                    if end is None:
                        continue
                found.setdefault((rule.index, i, end), _Found(rule, i, end, where))
        # A one-word rule also matches the word typed in two: "ই মেইল" = ইমেইল, "web site" = website.
        # Only halves of two letters or more making five or more, never a `*` pattern: "না কি" is not
        # নাকি, and the Banglish ending in "website e dite hobe" is not the e of "edit".
        for i in range(n - 1):
            a, b = tokens[i].text, tokens[i + 1].text
            if a.isascii() != b.isascii() or min(len(a), len(b)) < 2 or len(a) + len(b) < _JOIN_MIN:
                continue
            for rule, mode, joined in self._token(a + b).starts:
                if not joined and len(rule.patterns) == 1 and isinstance(rule.patterns[0], str):
                    found.setdefault((rule.index, i, i + 2), _Found(rule, i, i + 2, where))
        return list(found.values())

    def _extend(self, rule: _Compiled, mode: str, tokens: list[_Token], i: int, n: int) -> int | None:
        """End of the phrase whose first word matched at i, or None; a gap takes as few words as it can."""
        pats = rule.patterns

        def rest(k: int, pos: int) -> int | None:
            if k == len(pats):
                return pos
            if pats[k] is None:  # gap: skip 0..GAP_WORDS words
                for skip in range(GAP_WORDS + 1):
                    end = rest(k + 1, pos + skip)
                    if end is not None:
                        return end
                return None
            if pos >= n or not self._word_matches(pats[k], mode, tokens[pos]):
                return None
            return rest(k + 1, pos + 1)

        return rest(1, i + 1)

    # -- scoring --

    def _score(self, found: list[_Found], tokens: dict[str, list[_Token]], reply: bool):
        """Apply longest-match, once-per-rule and `not` rules; return scores and the matches that count."""
        s = self.settings
        mult = {"subject": s.reply_subject_weight if reply else s.subject_weight, "body": 1.0}
        by_group: dict[tuple[str, str], list[_Found]] = {}
        for f in found:
            by_group.setdefault((f.rule.term.service, f.where), []).append(f)
        scores: dict[str, float] = {}
        matches: list[Match] = []
        kept: dict[str, list[tuple[_Found, float]]] = {}  # positive matches before damping
        against: dict[str, float] = {}  # weight of each service's `not` words in the body
        for (service, where), items in by_group.items():
            negatives = [f for f in items if f.rule.term.negative]
            positives = [f for f in items if not f.rule.term.negative]
            blocked: list[tuple[int, int]] = []
            counted: set[int] = set()
            total = 0.0
            for f in sorted(negatives, key=lambda f: (f.start, -f.end)):
                if any(p.start <= f.start and f.end <= p.end and p.end - p.start > f.end - f.start
                       for p in positives):
                    continue  # a longer rule of the service holds these words: "service centre" inside
                    # "union information and service centre" is that name, not a word against it
                blocked.append((f.start, f.end))
                if f.rule.index not in counted:
                    counted.add(f.rule.index)
                    w = -f.rule.term.weight * mult[where]
                    total += w
                    matches.append(self._match(f, tokens[where], w))
            positives.sort(key=lambda f: (-(f.end - f.start), -f.rule.term.weight, f.start))
            for f in positives:
                if any(f.start < e and s < f.end for s, e in blocked):
                    continue
                blocked.append((f.start, f.end))
                if f.rule.index in counted:
                    continue
                counted.add(f.rule.index)
                kept.setdefault(service, []).append((f, f.rule.term.weight * mult[where]))
            scores[service] = scores.get(service, 0.0) + total
            if where == "body":
                against[service] = total
        for service, items in kept.items():
            if s.damp_parts:
                items = self._undamped(items)
            if s.body_overrules_subject and mult["subject"] > 1 and \
                    against.get(service, 0.0) + sum(w for f, w in items if f.where == "body") < 0:
                # the body argues against this service: its words in the subject count like the body's
                items = [(f, w / mult["subject"] if f.where == "subject" else w) for f, w in items]
            for f, w in items:
                scores[service] += w
                matches.append(self._match(f, tokens[f.where], w))
        return scores, matches

    @staticmethod
    def _undamped(items: list[tuple[_Found, float]]) -> list[tuple[_Found, float]]:
        """Leave out a body rule whose words are part of a longer rule of the same service that counted
        elsewhere in the message: "শেখ রাসেল" after "শেখ রাসেল ডিজিটাল ল্যাব" is the same name again.
        The subject is the sender's own summary and is never left out."""
        def inside(short: tuple, long: tuple) -> bool:
            n = len(short)
            return n < len(long) and any(long[i:i + n] == short for i in range(len(long) - n + 1))

        return [(f, w) for f, w in items
                if f.where == "subject"
                or not any(g.rule.term.lang == f.rule.term.lang and inside(f.rule.term.words, g.rule.term.words)
                           for g, _ in items)]

    @staticmethod
    def _match(f: _Found, tokens: list[_Token], weight: float) -> Match:
        text = " ".join(t.text for t in tokens[f.start:f.end])
        return Match(f.rule.term.service, f.rule.term.text, text, f.where, weight)

    # -- public --

    def classify(self, subject: str | None, text: str | None, html: str | None = None) -> Classification:
        """Classify one message. `text` is the plain body; `html` is used when there is no plain text."""
        body = text if text and text.strip() else html_to_text(html)
        forward = bool(subject and _FORWARD_PREFIX.match(subject))
        body = strip_quoted_for_classification(body, self.settings.read_forwarded, forward)
        toks = {"subject": [self._token(t) for t in tokenize(subject)],
                "body": [self._token(t) for t in tokenize(body)]}
        if len(self._cache) > 200_000:  # bound memory in a long-running process
            self._cache.clear()
        found = self._find(toks["subject"], "subject") + self._find(toks["body"], "body")
        reply = bool(subject and _REPLY_PREFIX.match(subject))
        note = [f for f in found if f.rule.term.service in _NOTE_WORDS]
        found = [f for f in found if f.rule.term.service not in _NOTE_WORDS]
        scores, matches = self._score(found, toks, reply)
        self._absorb(scores, matches)
        thanks = self._thanks_only(note, toks, "" if reply else (subject or ""), body)
        return self._decide(scores, matches, thanks)

    def _absorb(self, scores: dict[str, float], matches: list[Match]) -> None:
        """A place with its own service takes the words of the general services that happen there:
        a printer fault or a dead line at a Union Digital Centre is a UDC matter (`classifier.absorb`).
        The place must score at least `min_score` by its own words."""
        for place, general in self.settings.absorb:
            own = scores.get(place, 0.0)
            if own <= 0 or own < self.settings.min_score:
                continue
            for code in general:
                moved = scores.get(code, 0.0)
                if moved > 0:
                    scores[place] += moved
                    scores[code] = 0.0
                    matches.append(Match(place, f"the {code} words, at this place", code, "body", moved))

    def _thanks_only(self, note: list[_Found], tokens: dict[str, list[_Token]], subject: str,
                     body: str) -> list[Match]:
        """The words of thanks when the message is only a thank-you, else []. A "Re:" subject was
        written for the earlier message and is not read here."""
        own = [f for f in note if f.where == "body" or subject]
        if not any(f.rule.term.service == THANKS for f in own):
            return []
        if any(f.rule.term.service == UNLESS for f in own) or "?" in subject + body or "？" in subject + body:
            return []
        seen, out = set(), []
        for f in own:
            if f.rule.index not in seen:
                seen.add(f.rule.index)
                out.append(self._match(f, tokens[f.where], 0.0))
        return [Match(NONE, m.rule_term, m.matched_text, m.where, 0.0) for m in out]

    def _decide(self, scores: dict[str, float], matches: list[Match],
                thanks: list[Match] | None = None) -> Classification:
        s = self.settings
        oos = max(scores.pop(NONE, 0.0), 0.0)
        ranked = sorted(((c, v) for c, v in scores.items() if v > 0), key=lambda cv: (-cv[1], cv[0]))
        ranking = sorted(ranked + ([(NONE, oos)] if oos > 0 else []), key=lambda cv: -cv[1])
        ranking = tuple((c, round(v, 3)) for c, v in ranking[: s.ranking_size])
        order = {code: i for i, (code, _) in enumerate(ranked + [(NONE, oos)])}
        matches.sort(key=lambda m: (order.get(m.service, len(order)), m.where != "subject", -m.weight))
        best, best_score = (ranked[0] if ranked else (None, 0.0))
        runner = ranked[1][1] if len(ranked) > 1 else 0.0
        margin = best_score - max(runner, oos)
        service, reason = None, "routed"
        if thanks:
            matches.extend(thanks)
            reason = THANKS_ONLY
        elif best is None:
            reason = "no rule matched"
        elif oos >= best_score:
            reason = "out-of-scope words outweigh every service"
        elif best_score < s.min_score:
            reason = f"score {best_score:g} below the minimum {s.min_score:g}"
        elif margin < s.min_margin:
            reason = f"lead {margin:g} over the runner-up below the minimum {s.min_margin:g}"
        else:
            service = best
        confident = service is not None and best_score >= s.confident_score and margin >= s.confident_margin
        return Classification(service, round(best_score, 3), round(margin, 3), ranking, tuple(matches),
                              reason, confident, best)
