"""Charter deadlines as the charter writes them."""

import json
import unicodedata
from pathlib import Path

import pytest
import yaml

from maildesk.deadline import AS_REQUIRED, WHERE_APPLICABLE, Deadline, parse_deadline

ROOT = Path(__file__).resolve().parents[2]
SERVICES_JSON = Path("/work/shared/corpus/services.json")

# The 14 charter rows, as written in the charter and as the corpus (services.json) parses them.
CHARTER = {
    "2.1.1": ("তাৎক্ষণিক/ ৩ কার্যদিবস", True, 3, ()),
    "2.1.2": ("তাৎক্ষণিক/ ৩ কার্যদিবস (প্রয়োজ্য ক্ষেত্রে)", True, 3, (WHERE_APPLICABLE,)),
    "2.1.3": ("তাৎক্ষণিক/ ৩ কার্যদিবস (প্রয়োজ্য ক্ষেত্রে)", True, 3, (WHERE_APPLICABLE,)),
    "2.2.1": ("৭ কার্যদিবস", False, 7, ()),
    "2.2.2": ("৭ কার্যদিবস/ চাহিদা অনুযায়ী", False, 7, (AS_REQUIRED,)),
    "2.2.3": ("৭ কার্যদিবস/ চাহিদা অনুযায়ী", False, 7, (AS_REQUIRED,)),
    "2.2.4": ("১৫ কার্যদিবস/ অটোমেশনের চাহিদা অনুযায়ী", False, 15, (AS_REQUIRED,)),
    "2.2.5": ("তাৎক্ষণিক/ ৩ কার্যদিবস (প্রয়োজ্য ক্ষেত্রে)", True, 3, (WHERE_APPLICABLE,)),
    "2.2.6": ("৭ কার্যদিবস/ চাহিদা অনুযায়ী", False, 7, (AS_REQUIRED,)),
    "2.2.7": ("তাৎক্ষণিক/ ৩ কার্যদিবস (প্রযোজ্য ক্ষেত্রে)", True, 3, (WHERE_APPLICABLE,)),
    "2.2.8": ("তাৎক্ষণিক/ ৩ কার্যদিবস (প্রযোজ্য ক্ষেত্রে)", True, 3, (WHERE_APPLICABLE,)),
    "2.2.9": ("তাৎক্ষণিক/ ৩ কার্যদিবস (প্রযোজ্য ক্ষেত্রে)", True, 3, (WHERE_APPLICABLE,)),
    "2.2.10": ("তাৎক্ষণিক/ ৩ কার্যদিবস (প্রযোজ্য ক্ষেত্রে)", True, 3, (WHERE_APPLICABLE,)),
    "2.2.11": ("তাৎক্ষণিক/ ১৫ কার্যদিবস (প্রযোজ্য ক্ষে ত্রে)", True, 15, (WHERE_APPLICABLE,)),
}


@pytest.mark.parametrize("code", sorted(CHARTER))
def test_every_charter_deadline(code):
    text, immediate, days, qualifiers = CHARTER[code]
    assert parse_deadline(text) == Deadline(immediate, days, qualifiers, text)


def test_every_deadline_in_the_repository_charter_parses():
    services = yaml.safe_load((ROOT / "config" / "charter.yaml").read_text(encoding="utf-8"))["services"]
    assert services
    for code, service in services.items():
        assert parse_deadline(service["deadline"]).working_days > 0, code


@pytest.mark.skipif(not SERVICES_JSON.exists(), reason="shared corpus not mounted")
def test_agrees_with_the_corpus_parse():
    corpus_qualifier = {
        "where applicable (প্রযোজ্য ক্ষেত্রে)": WHERE_APPLICABLE,
        "or as required (চাহিদা অনুযায়ী)": AS_REQUIRED,
    }
    services = json.loads(SERVICES_JSON.read_text(encoding="utf-8"))
    assert len(services) == 14
    for s in services:
        got = parse_deadline(s["deadline"])
        assert (got.immediate, got.working_days) == (
            s["deadline_parsed"]["immediate"],
            s["deadline_parsed"]["working_days"],
        ), s["code"]
        expected = {corpus_qualifier[q] for q in s["deadline_qualifiers"] if q in corpus_qualifier}
        assert set(got.qualifiers) == expected, s["code"]


def test_ascii_digits_and_english():
    assert parse_deadline("7 কার্যদিবস").working_days == 7
    assert parse_deadline("Immediately / 3 working days (where applicable)") == Deadline(
        True, 3, (WHERE_APPLICABLE,), "Immediately / 3 working days (where applicable)"
    )


def test_precomposed_nukta_and_spacing_variants():
    decomposed = unicodedata.normalize("NFC", "প্রয়োজ্য ক্ষেত্রে")
    precomposed = decomposed.replace("\u09af\u09bc", "\u09df")
    assert precomposed != decomposed
    for text in (f"তাৎক্ষণিক/ ৩ কার্যদিবস ({precomposed})", "তাৎক্ষণিক/৩ কার্য দিবস (প্রযোজ্য ক্ষে ত্রে)"):
        d = parse_deadline(text)
        assert (d.immediate, d.working_days, d.qualifiers) == (True, 3, (WHERE_APPLICABLE,))


def test_old_encoding_of_khanda_ta():
    assert parse_deadline("তাত্\u200dক্ষণিক/ ৩ কার্যদিবস").immediate


def test_range_takes_the_upper_bound():
    assert parse_deadline("৩-৫ কার্যদিবস").working_days == 5


def test_immediate_alone_is_the_next_working_day():
    # docs/design.md: an immediate service is due by the end of the next working day.
    assert parse_deadline("তাৎক্ষণিক") == Deadline(True, 1, (), "তাৎক্ষণিক")


@pytest.mark.parametrize("text", ["চাহিদা অনুযায়ী", "৭ দিন", "", "সাত কার্যদিবস"])
def test_no_number_of_working_days_is_refused(text):
    with pytest.raises(ValueError, match="no number of working days"):
        parse_deadline(text)


def test_two_different_numbers_are_refused():
    with pytest.raises(ValueError, match="several numbers"):
        parse_deadline("৩ কার্যদিবস/ ৭ কার্যদিবস")


def test_not_text_is_refused():
    with pytest.raises(ValueError):
        parse_deadline(3)
