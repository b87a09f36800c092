"""Keyword rules as data: read and check the `keywords:` of each service and the `classifier:` section.

The office edits these rules by hand, so every mistake is reported as a ConfigError naming the file
and the exact key (`services.2.2.7.keywords.bn[3]`) instead of surfacing later as a strange routing.

A rule is written `"term: weight"` (or just `"term"`, weight 1). A term may be a phrase of several `*` inside a word is a wildcard (`proshik*`). Lists:

  bn        Bengali words; inflected forms match (ল্যাব matches ল্যাবে, ল্যাবের, ল্যাবগুলো)
  en        English words; plurals and -ed/-ing forms match (laptop matches laptops)
  banglish  Bengali typed in Latin letters; spelling variants match (proshikkhon = proshikhon)
  not       words that say the message is NOT for this service; their weight is taken off the score
            (in `classifier.out_of_scope`: words that say an office is writing about its own work, so the
            other offices' services it names are not the sender's own errand)

`classifier.thanks_only` names a thank-you note: words of thanks (`thanks`) and words that ask for
something or report a new problem (`unless`). A message with thanks, no `unless` word and no question
mark goes to triage whatever services it names ("thank you for repairing the lab laptops").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from maildesk.errors import ConfigError
from maildesk.rules.normalize import DEFAULT_BN_SUFFIXES, is_bengali, normalize, tokenize

LANGS = ("bn", "en", "banglish")
GAP = ".."  # in Term.words: up to GAP_WORDS other words may stand here
GAP_WORDS = 3
KEYWORD_LISTS = LANGS + ("not",)
MAX_WEIGHT = 20.0


@dataclass(frozen=True)
class Term:
    """One rule: what the clerk wrote, how it is matched, and where it lives in the file."""

    service: str  # service code, or "none" for the out-of-scope list
    text: str  # the term as written, without the weight
    lang: str  # bn | en | banglish
    weight: float
    negative: bool
    words: tuple[str, ...]  # normalised words; may contain '*', or be GAP
    key: str  # dotted config key, for messages


@dataclass(frozen=True)
class Settings:
    """Thresholds that decide between routing a message and sending it to triage."""

    subject_weight: float = 2.0
    reply_subject_weight: float = 1.0  # "Re:"/"Fwd:" subjects were written for an earlier message
    min_score: float = 3.0
    min_margin: float = 1.5
    confident_score: float = 6.0
    confident_margin: float = 3.0
    ranking_size: int = 5
    damp_parts: bool = False  # a rule inside a longer rule of the same service that counted elsewhere adds nothing
    body_overrules_subject: bool = False  # a body that argues against a service takes away its subject bonus
    absorb: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (place service, general services it takes over)
    read_forwarded: bool = False  # a forwarded message's text counts with the forwarder's own words
    bn_suffixes: tuple[str, ...] = DEFAULT_BN_SUFFIXES


@dataclass(frozen=True)
class RuleSet:
    """All keyword rules of the charter, validated."""

    services: tuple[str, ...]  # every service code, in charter order
    terms: tuple[Term, ...]  # positive and negative terms of every service
    out_of_scope: tuple[Term, ...]  # terms that mean "the office does not handle this"
    settings: Settings = field(default_factory=Settings)
    source_file: str = "charter.yaml"
    thanks: tuple[Term, ...] = ()  # classifier.thanks_only.thanks: words of thanks
    unless: tuple[Term, ...] = ()  # classifier.thanks_only.unless: a request, a question or a new problem

    def terms_of(self, service: str) -> tuple[Term, ...]:
        return tuple(t for t in self.terms if t.service == service)


_SETTINGS_NUMBERS = {
    "subject_weight": (1.0, 10.0),
    "reply_subject_weight": (0.0, 10.0),
    "min_score": (0.0, 100.0),
    "min_margin": (0.0, 100.0),
    "confident_score": (0.0, 100.0),
    "confident_margin": (0.0, 100.0),
    "ranking_size": (1, 14),
}
_SETTINGS_FLAGS = ("damp_parts", "body_overrules_subject", "read_forwarded")
_CLASSIFIER_KEYS = set(_SETTINGS_NUMBERS) | set(_SETTINGS_FLAGS) | {"out_of_scope", "bn_suffixes", "thanks_only",
                                                                    "absorb"}
THANKS = "thanks"  # Term.service of the thank-you words
UNLESS = "unless"  # Term.service of the words that make a thank-you more than a thank-you


def load_rules(charter_raw: dict, source_file) -> RuleSet:
    """Validate the keyword parts of a parsed charter.yaml and return the rules.

    Raises ConfigError(file, dotted_key, message) on the first problem found.
    """
    file = str(source_file)
    if not isinstance(charter_raw, dict):
        raise ConfigError(file, "(top)", "the charter must be a mapping")
    services_raw = charter_raw.get("services")
    if not isinstance(services_raw, dict) or not services_raw:
        raise ConfigError(file, "services", "must be a mapping of service codes")

    settings = _load_settings(charter_raw.get("classifier"), file)
    _check_absorb(settings, [str(c) for c in services_raw], file)
    terms: list[Term] = []
    for code, service in services_raw.items():
        code = str(code)
        base = f"services.{code}.keywords"
        raw = service.get("keywords") if isinstance(service, dict) else None
        terms.extend(_load_lists(raw, file, base, code, allow_not=True))

    oos_raw = (charter_raw.get("classifier") or {}).get("out_of_scope")
    out_of_scope = tuple(_load_lists(oos_raw, file, "classifier.out_of_scope", "none", allow_not=True))
    thanks, unless = _load_thanks_only((charter_raw.get("classifier") or {}).get("thanks_only"), file)
    return RuleSet(
        services=tuple(str(c) for c in services_raw),
        terms=tuple(terms),
        out_of_scope=out_of_scope,
        settings=settings,
        source_file=file,
        thanks=thanks,
        unless=unless,
    )


def _load_thanks_only(raw: Any, file: str) -> tuple[tuple[Term, ...], tuple[Term, ...]]:
    """`thanks_only: {thanks: {bn/en/banglish lists}, unless: {...}}`; both lists are needed."""
    if raw is None:
        return (), ()
    base = "classifier.thanks_only"
    if not isinstance(raw, dict):
        raise ConfigError(file, base, "must be a mapping with `thanks` and `unless`")
    unknown = sorted(set(map(str, raw)) - {THANKS, UNLESS})
    if unknown:
        raise ConfigError(file, f"{base}.{unknown[0]}", "unknown key; expected thanks, unless")
    thanks = tuple(_load_lists(raw.get(THANKS), file, f"{base}.{THANKS}", THANKS, allow_not=False))
    unless = tuple(_load_lists(raw.get(UNLESS), file, f"{base}.{UNLESS}", UNLESS, allow_not=False))
    if not thanks:
        raise ConfigError(file, f"{base}.{THANKS}", "needs at least one word of thanks")
    if not unless:
        raise ConfigError(file, f"{base}.{UNLESS}", "needs words that ask for something, or every "
                          "polite request would look like a thank-you")
    return thanks, unless


def _load_settings(raw: Any, file: str) -> Settings:
    if raw is None:
        return Settings()
    if not isinstance(raw, dict):
        raise ConfigError(file, "classifier", "must be a mapping")
    unknown = sorted(set(map(str, raw)) - _CLASSIFIER_KEYS)
    if unknown:
        raise ConfigError(file, f"classifier.{unknown[0]}",
                          f"unknown setting; expected one of {', '.join(sorted(_CLASSIFIER_KEYS))}")
    values: dict[str, Any] = {}
    for name, (lo, hi) in _SETTINGS_NUMBERS.items():
        if name not in raw:
            continue
        value = raw[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(file, f"classifier.{name}", f"must be a number, not {value!r}")
        if not lo <= value <= hi:
            raise ConfigError(file, f"classifier.{name}", f"must be between {lo} and {hi}, not {value}")
        values[name] = int(value) if isinstance(lo, int) and isinstance(hi, int) else float(value)
    for name in _SETTINGS_FLAGS:
        if name in raw:
            if not isinstance(raw[name], bool):
                raise ConfigError(file, f"classifier.{name}", f"must be true or false, not {raw[name]!r}")
            values[name] = raw[name]
    if "absorb" in raw:
        values["absorb"] = _load_absorb(raw["absorb"], file)
    if "bn_suffixes" in raw:
        sfx = raw["bn_suffixes"]
        if not isinstance(sfx, list) or not sfx:
            raise ConfigError(file, "classifier.bn_suffixes", "must be a non-empty list of Bengali endings")
        for i, s in enumerate(sfx):
            if not isinstance(s, str) or not is_bengali(s) or " " in normalize(s):
                raise ConfigError(file, f"classifier.bn_suffixes[{i}]", f"not a Bengali ending: {s!r}")
        values["bn_suffixes"] = tuple(sfx)
    settings = Settings(**values)
    if settings.confident_score < settings.min_score:
        raise ConfigError(file, "classifier.confident_score", "must not be below min_score")
    return settings


def _load_absorb(raw: Any, file: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """`absorb: {"2.2.9": ["2.2.5", "2.2.10"]}`: the place service and the general services it takes over."""
    if not isinstance(raw, dict):
        raise ConfigError(file, "classifier.absorb", "must map a service code to a list of service codes")
    out = []
    for place, general in raw.items():
        key = f"classifier.absorb.{place}"
        if not isinstance(general, list) or not general or not all(isinstance(g, str) for g in general):
            raise ConfigError(file, key, "must be a non-empty list of service codes")
        if str(place) in general:
            raise ConfigError(file, key, "a service cannot absorb itself")
        out.append((str(place), tuple(general)))
    return tuple(out)


def _check_absorb(settings: Settings, services: list[str], file: str) -> None:
    for place, general in settings.absorb:
        for i, code in enumerate((place,) + general):
            if code not in services:
                key = f"classifier.absorb.{place}" + (f"[{i - 1}]" if i else "")
                raise ConfigError(file, key, f"no service {code!r} in this charter")


def _load_lists(raw: Any, file: str, base: str, service: str, allow_not: bool) -> list[Term]:
    if raw is None or raw == {}:
        return []
    if not isinstance(raw, dict):
        raise ConfigError(file, base, "must be a mapping with lists bn, en, banglish"
                          + (", not" if allow_not else ""))
    allowed = KEYWORD_LISTS if allow_not else LANGS
    terms: list[Term] = []
    seen: dict[tuple, str] = {}
    for lang, items in raw.items():
        lkey = f"{base}.{lang}"
        if lang not in allowed:
            raise ConfigError(file, lkey, f"unknown list; expected one of {', '.join(allowed)}")
        if items is None:
            continue
        if not isinstance(items, list):
            raise ConfigError(file, lkey, "must be a list of \"term: weight\" entries")
        for i, item in enumerate(items):
            key = f"{lkey}[{i}]"
            text, weight = _parse_item(item, file, key)
            term_lang = lang if lang != "not" else ("bn" if is_bengali(text) else "en")
            words = _words(text, term_lang, file, key)
            ident = (term_lang, lang == "not", words)
            if ident in seen:
                raise ConfigError(file, key, f"duplicate of {seen[ident]} ({text!r})")
            seen[ident] = key
            terms.append(Term(service, text, term_lang, weight, lang == "not", words, key))
    return terms


def _parse_item(item: Any, file: str, key: str) -> tuple[str, float]:
    """`"term: 3"`, `"term"` or (when the quotes were forgotten) the mapping `{term: 3}`."""
    if isinstance(item, dict) and len(item) == 1:
        (text, weight), = item.items()
        text = str(text)
    elif isinstance(item, str):
        text, sep, w = item.rpartition(":")
        if not sep:
            text, weight = item, 1
        else:
            try:
                weight = float(w.strip())
            except ValueError:
                raise ConfigError(file, key, f"weight after ':' must be a number: {item!r}") from None
    else:
        raise ConfigError(file, key, f"expected \"term: weight\", got {item!r}")
    if isinstance(weight, bool) or not isinstance(weight, (int, float)):
        raise ConfigError(file, key, f"weight must be a number: {weight!r}")
    if not 0 < weight <= MAX_WEIGHT:
        raise ConfigError(file, key, f"weight must be above 0 and at most {MAX_WEIGHT:g}, not {weight:g}")
    text = text.strip()
    if not text:
        raise ConfigError(file, key, "empty term")
    return text, float(weight)


def _words(text: str, lang: str, file: str, key: str) -> tuple[str, ...]:
    """Normalised words of a term, keeping '*' wildcards; checks the script matches the list."""
    parts: list[str] = []
    for chunk in text.split():
        if chunk in (GAP, "...", "\u2026"):
            if not parts or parts[-1] == GAP:
                raise ConfigError(file, key, f"'..' must stand between two words: {text!r}")
            parts.append(GAP)
        elif "*" in chunk:
            pieces = chunk.split("*")
            norm = ["".join(tokenize(p)) for p in pieces]
            word = "*".join(norm)
            literal_prefix = norm[0]
            if len(literal_prefix) < 2:
                raise ConfigError(file, key, f"a pattern must start with at least two letters: {text!r}")
            parts.append(word)
        else:
            parts.extend(tokenize(chunk))
    if parts and parts[-1] == GAP:
        raise ConfigError(file, key, f"'..' must stand between two words: {text!r}")
    if not parts:
        raise ConfigError(file, key, f"no letters left after normalisation: {text!r}")
    bengali = any(is_bengali(p) for p in parts)
    latin = any(any("a" <= ch <= "z" for ch in p) for p in parts)
    if lang == "bn" and latin:
        raise ConfigError(file, key, f"Latin letters in the bn list; move {text!r} to en or banglish")
    if lang in ("en", "banglish") and bengali:
        raise ConfigError(file, key, f"Bengali letters in the {lang} list; move {text!r} to bn")
    return tuple(parts)
