"""Keyword routing: matching rules, scoring, triage, explanations, config errors, and the corpus figures."""

import csv
import json
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from maildesk.errors import ConfigError
from maildesk.rules.classifier import Classification, Classifier, Match, strip_quoted_for_classification
from maildesk.rules.eml import subject_and_bodies
from maildesk.rules.evaluate import evaluate, lint, suggest
from maildesk.rules.keywords import load_rules

ROOT = Path(__file__).resolve().parents[2]
CHARTER = ROOT / "config" / "charter.yaml"
CORPUS_DEV = ROOT / "tests" / "data" / "corpus-dev"
OWN_MAIL = ROOT / "tests" / "data" / "classify"
ROUND2 = ROOT / "tests" / "data" / "classify-round2"
BLIND1 = ROOT / "tests" / "data" / "holdout-blind"
BLIND2 = ROOT / "tests" / "data" / "holdout-blind2"


def mini(services=None, **classifier):
    """A small charter with hand-made rules, so each behaviour is checked on rules the test can see."""
    services = services or {
        "2.2.7": {"keywords": {"bn": ["শেখ রাসেল ডিজিটাল ল্যাব: 6", "ল্যাব: 3"],
                               "en": ["digital lab: 5", "lab: 3"]}},
        "2.2.3": {"keywords": {"bn": ["ই-নথি: 5", "নথি: 3"], "en": ["e-nothi: 5"], "banglish": ["nothi: 3"]}},
        "2.1.3": {"keywords": {"bn": ["প্রশিক্ষণ: 2"], "en": ["training: 2", "when will .. get: 4"],
                               "banglish": ["proshikkhon: 4", "prokolp*: 3"]}},
        "2.2.10": {"keywords": {"bn": ["ইন্টারনেট: 2"], "en": ["internet: 2"], "banglish": ["net nai: 4"],
                                "not": ["ল্যাব: 2", "lab: 2"]}},
    }
    cfg = {"subject_weight": 2, "min_score": 3, "min_margin": 1.5, "confident_score": 6, "confident_margin": 3,
           "out_of_scope": {"bn": ["খতিয়ান: 5"], "en": ["lottery: 5"]}}
    cfg.update(classifier)
    return {"services": services, "classifier": cfg}


@pytest.fixture(scope="module")
def clf():
    return Classifier.from_charter(mini(), "mini.yaml")


@pytest.fixture(scope="module")
def shipped():
    return Classifier.from_charter(yaml.safe_load(CHARTER.read_text(encoding="utf-8")), CHARTER)


def terms(c: Classification, service=None):
    return {m.rule_term for m in c.matched if service is None or m.service == service}


# --- matching ------------------------------------------------------------------------------------


def test_inflected_bengali_words_match_their_keyword(clf):
    c = clf.classify("", "আমাদের ল্যাবের সমস্যা, ল্যাবে কেউ নেই")
    assert c.service == "2.2.7" and terms(c, "2.2.7") == {"ল্যাব"}
    assert clf.classify("", "ই-নথিতে পত্র যাচ্ছে না").service == "2.2.3"


def test_words_that_only_begin_like_a_keyword_do_not_match(clf):
    c = clf.classify("ল্যাবরেটরি", "ল্যাবরেটরি টেকনিশিয়ান নথিভুক্ত")
    assert c.service is None and c.matched == ()


def test_precomposed_nukta_in_the_mail_matches_a_keyword_typed_with_nukta_sequence():
    rules = mini({"2.2.9": {"keywords": {"bn": ["ইউনিয়ন ডিজিটাল সেন্টার: 6"]}}})
    c = Classifier.from_charter(rules, "x.yaml").classify("", "ইউনি\u09dfন ডিজিটাল সেন্টারের প্রিন্টার")
    assert c.service == "2.2.9"


def test_banglish_spelling_variants_match_one_rule(clf):
    for spelling in ("proshikkhon", "proshikhon", "prosikkhon", "Proshikkhoner"):
        c = clf.classify("", f"{spelling} kobe hobe")
        assert c.service == "2.1.3", spelling
        assert terms(c) == {"proshikkhon"}


def test_a_wildcard_rule_matches_every_ending(clf):
    for word in ("prokolpo", "prokalpa", "prokolper"):
        assert terms(clf.classify("", f"{word} er tottho chai"), "2.1.3") == {"prokolp*"}, word
    assert clf.classify("", "prokash").matched == ()


def test_a_wildcard_whose_banglish_key_is_short_still_matches():
    c = Classifier.from_charter({"services": {"2.1.3": {"keywords": {"banglish": ["kh*: 4"]}}}}, "x.yaml")
    assert c.classify("", "khata").service == "2.1.3" and c.classify("", "kata").service is None


def test_a_gap_lets_other_words_stand_between_two_words(clf):
    assert terms(clf.classify("", "when will our school get it"), "2.1.3") == {"when will .. get"}
    assert terms(clf.classify("", "when will our upazila high school finally get it"), "2.1.3") == set()


def test_a_phrase_also_matches_typed_as_one_word(clf):
    assert clf.classify("enothi", "").service == "2.2.3"
    assert terms(clf.classify("", "E Nothi te dak"), "2.2.3") == {"e-nothi"}


# --- scoring -------------------------------------------------------------------------------------


def test_spoken_verb_forms_match_rules_written_in_the_standard_form():
    c = Classifier.from_charter({"services": {"2.2.5": {"keywords": {
        "bn": ["কাজ করছে না: 3"], "banglish": ["kaj korche na: 3"]}}}}, "c.yaml")
    assert c.classify("", "অফিসের প্রিন্টার কাজ করতেছে না").score == 3
    assert c.classify("", "printer kaj kortese na").score == 3


def test_a_one_word_rule_also_matches_the_word_typed_in_two():
    c = Classifier.from_charter({"services": {"2.2.2": {"keywords": {
        "en": ["website: 3", "edit: 3"], "bn": ["ওয়েবসাইট: 3", "নাকি: 3"]}}}}, "c.yaml")
    assert c.classify("", "our web site is old").score == 3
    assert c.classify("", "অফিসের ওয়েব সাইটে নোটিশ").score == 3
    # halves of one letter are endings or particles, and two short particles do not make a word
    assert c.classify("", "website e dite hobe").score == 3  # "website" only, not "edit"
    assert c.classify("", "জানি না কি হবে").score == 0


def test_a_negated_verb_also_matches_with_the_negation_typed_onto_it():
    services = {"2.2.5": {"keywords": {"bn": ["চালু হয় না: 3"], "banglish": ["on hoy na: 3"]}}}
    c = Classifier.from_charter(mini(services), "mini.yaml")
    for body in ("অফিসের কম্পিউটার চালু হয়না", "অফিসের কম্পিউটার চালু হয় না", "computer on hoina", "pc on hoyna"):
        assert c.classify("", body).service == "2.2.5", body
    # the rule still counts once, and a না that is not a negation of the rule's verb does not match
    assert c.classify("", "চালু হয়না, চালু হয় না").score == 3
    assert c.classify("", "চালুহয় না").service is None


def test_a_subject_match_weighs_more_than_a_body_match(clf):
    in_subject = clf.classify("ল্যাব", "")
    in_body = clf.classify("", "ল্যাব")
    assert in_subject.score == 2 * in_body.score == 6
    assert [m.where for m in in_subject.matched if m.service == "2.2.7"] == ["subject"]


def test_a_reply_subject_counts_like_the_body(clf):
    # "Re: ..." repeats the subject of an earlier message; it says less about this one.
    assert clf.classify("Re: ল্যাব", "").score == clf.classify("", "ল্যাব").score == 3
    assert clf.classify("FWD: ল্যাব", "").score == 3 and clf.classify("Rerun ল্যাব", "").score == 6


def test_a_rule_counts_once_however_often_it_repeats(clf):
    assert clf.classify("", "ল্যাব ল্যাব ল্যাবে ল্যাবের").score == 3


def test_a_longer_phrase_hides_the_shorter_rules_inside_it(clf):
    c = clf.classify("", "শেখ রাসেল ডিজিটাল ল্যাবের ল্যাপটপ")
    assert terms(c, "2.2.7") == {"শেখ রাসেল ডিজিটাল ল্যাব"} and c.score == 6
    c = clf.classify("", "শেখ রাসেল ডিজিটাল ল্যাব, আর একটা ল্যাব")
    assert c.score == 6 + 3


def test_not_words_take_their_weight_off_the_service(clf):
    plain = clf.classify("", "internet nai, net nai")
    in_lab = clf.classify("", "lab e net nai")
    assert plain.service == "2.2.10"
    assert dict(in_lab.ranking)["2.2.7"] == 3
    assert any(m.service == "2.2.10" and m.weight == -2 for m in in_lab.matched)
    assert in_lab.service is None  # 2.2.7 scores 3, 2.2.10 4 - 2: too close to call


def test_a_not_word_inside_a_longer_rule_of_the_same_service_does_not_count():
    services = {"2.2.9": {"keywords": {"en": ["union information and service centre: 8", "centre: 2"],
                                       "not": ["service cent*: 3"]}},
                "2.2.5": {"keywords": {"en": ["scanner: 1"]}}}
    c = Classifier.from_charter(mini(services), "mini.yaml").classify(
        "", "Please inspect the union information and service centre")
    assert c.service == "2.2.9" and c.score == 8
    assert "service cent*" not in terms(c)
    # on its own the not word still counts against the service
    alone = Classifier.from_charter(mini(services), "mini.yaml").classify("", "the service centre near the market")
    assert dict(alone.ranking).get("2.2.9") is None and any(m.weight == -3 for m in alone.matched)


def test_parts_of_a_name_that_already_counted_add_nothing_in_the_body():
    damped = Classifier.from_charter(mini(damp_parts=True), "mini.yaml")
    plain = Classifier.from_charter(mini(), "mini.yaml")
    subject, body = "শেখ রাসেল ডিজিটাল ল্যাব", "ল্যাবের তালিকায় আমাদের বিদ্যালয় আছে কিনা"
    assert plain.classify(subject, body).score == 12 + 3
    c = damped.classify(subject, body)
    assert c.score == 12 and terms(c, "2.2.7") == {"শেখ রাসেল ডিজিটাল ল্যাব"}
    # the same rule again in the body still counts once there, as before
    assert damped.classify(subject, "শেখ রাসেল ডিজিটাল ল্যাবের ল্যাপটপ").score == 12 + 6
    # the subject is the sender's summary: a short name there counts even when the body has the long one
    assert damped.classify("ল্যাব", "শেখ রাসেল ডিজিটাল ল্যাব").score == 6 + 6


def test_a_body_that_argues_against_a_service_takes_away_its_subject_bonus():
    # subject "lab e net nai": 2.2.10 scores net nai 4 x 2; the body names the lab twice (not words of 2.2.10)
    subject, body = "net nai", "lab er lab"
    plain = Classifier.from_charter(mini(), "mini.yaml").classify(subject, body)
    assert dict(plain.ranking)["2.2.10"] == 8 - 2
    fair = Classifier.from_charter(mini(body_overrules_subject=True), "mini.yaml").classify(subject, body)
    assert dict(fair.ranking)["2.2.10"] == 4 - 2
    # a body with nothing against the service leaves the subject bonus alone (terse mail, empty body)
    assert Classifier.from_charter(mini(body_overrules_subject=True), "mini.yaml").classify("net nai", "").score == 8


def test_a_place_with_its_own_service_takes_the_words_of_a_general_service():
    body = "lab er internet, net nai"  # 2.2.7: lab 3; 2.2.10: internet 2 + net nai 4 - lab 2
    plain = Classifier.from_charter(mini(), "mini.yaml").classify("", body)
    assert plain.service is None and dict(plain.ranking) == {"2.2.10": 4, "2.2.7": 3}
    placed = Classifier.from_charter(mini(absorb={"2.2.7": ["2.2.10"]}), "mini.yaml").classify("", body)
    assert placed.service == "2.2.7" and placed.score == 7
    assert any(m.service == "2.2.7" and m.weight == 4 and "2.2.10" in m.rule_term for m in placed.matched)
    # the place must reach min_score by its own words
    weak = Classifier.from_charter(mini(absorb={"2.2.7": ["2.2.10"]}, min_score=4), "mini.yaml").classify("", body)
    assert weak.service is None and dict(weak.ranking)["2.2.10"] == 4
    # a place that scores nothing takes nothing, whatever min_score says
    none = Classifier.from_charter(mini(absorb={"2.2.7": ["2.2.10"]}, min_score=0), "mini.yaml").classify("", "net nai")
    assert none.service == "2.2.10"


def test_out_of_scope_words_send_the_message_to_triage(clf):
    c = clf.classify("lottery", "internet lottery winner")
    assert c.service is None and c.label == "none"
    assert "out-of-scope" in c.reason and c.ranking[0] == ("none", 5 * 2 + 5)


def test_out_of_scope_not_words_take_weight_off_the_out_of_scope_score():
    oos = {"bn": ["খতিয়ান: 5"], "en": ["trade license: 3"], "not": ["আমাদের দপ্তর: 2", "amader up: 2"]}
    services = {"2.2.4": {"keywords": {"banglish": ["hate likhe: 2", "auto hoy: 3"]}}}
    c = Classifier.from_charter(mini(services, out_of_scope=oos), "mini.yaml")
    office = c.classify("", "amader UP te trade license hate likhe dei, onno union e auto hoy")
    assert office.service == "2.2.4" and dict(office.ranking)["none"] == 1
    assert ("none", "amader up", -2) in {(m.service, m.rule_term, m.weight) for m in office.matched}
    # a citizen's own errand keeps its full out-of-scope weight, and the score never goes below zero
    assert c.classify("", "amar trade license hate likhe dilo").service is None
    assert c.classify("", "আমাদের দপ্তর থেকে hate likhe auto hoy").ranking[0][0] == "2.2.4"


def test_a_weak_score_goes_to_triage_not_to_a_guess(clf):
    c = clf.classify("", "প্রশিক্ষণ")
    assert c.service is None and c.candidate == "2.1.3" and "below the minimum" in c.reason


def test_a_close_race_goes_to_triage(clf):
    c = clf.classify("", "ল্যাব নথি")  # 3 against 3
    assert c.service is None and c.margin == 0 and "lead" in c.reason


def test_confidence_needs_a_clear_score_and_lead(clf):
    assert clf.classify("ই-নথি", "").confident
    weak = clf.classify("", "নথি ডিজিটাল")
    assert weak.service == "2.2.3" and not weak.confident


def test_nothing_matched_is_triage_with_a_reason(clf):
    c = clf.classify("Hello", "Just saying hi")
    assert c.service is None and c.reason == "no rule matched" and c.ranking == ()


def test_an_html_only_body_is_read_as_text(clf):
    c = clf.classify("", "", "<div>আমাদের <b>ল্যাবের</b> সমস্যা</div><style>.x{}</style>")
    assert c.service == "2.2.7"


THANKS_ONLY = {"thanks": {"bn": ["ধন্যবাদ"], "en": ["thank*"]},
               "unless": {"bn": ["কিন্তু", "দিবেন"], "en": ["please", "but", "again"]}}


@pytest.fixture(scope="module")
def polite():
    return Classifier.from_charter(mini(thanks_only=THANKS_ONLY), "mini.yaml")


def test_a_thank_you_note_goes_to_triage_whatever_service_it_names(polite):
    c = polite.classify("ধন্যবাদ", "ল্যাবের ল্যাপটপগুলো ঠিক করে দেওয়ার জন্য ধন্যবাদ, এখন শেখ রাসেল ডিজিটাল ল্যাব চলছে")
    assert c.service is None and c.reason == "a thank-you with no question or request"
    assert c.candidate == "2.2.7" and ("none", "ধন্যবাদ") in {(m.service, m.rule_term) for m in c.matched}
    assert not c.confident


def test_thanks_with_a_request_a_question_or_a_new_problem_is_routed(polite):
    assert polite.classify("", "Thanks for fixing the digital lab. Please check the lab printer too.").service == "2.2.7"
    assert polite.classify("", "Thank you. Is the digital lab ready?").service == "2.2.7"
    assert polite.classify("", "ধন্যবাদ, কিন্তু ল্যাবের প্রজেক্টর আবার বন্ধ").service == "2.2.7"
    # without the thanks_only section nothing changes
    assert Classifier.from_charter(mini(), "mini.yaml").classify("ধন্যবাদ", "ডিজিটাল ল্যাব চলছে").service == "2.2.7"


def test_a_reply_subject_is_not_read_for_thanks(polite):
    # "Re: Thanks" repeats an earlier subject; this message reports a fault
    assert polite.classify("Re: Thanks", "ডিজিটাল ল্যাব বন্ধ").service == "2.2.7"
    assert polite.classify("Re: lab", "ডিজিটাল ল্যাব চলছে, ধন্যবাদ").service is None


# --- quoted text and signatures ------------------------------------------------------------------


def test_quoted_lines_and_signatures_are_dropped():
    text = ("Our lab is down.\n> old: the e-nothi training\n>> older\n-- \nICT teacher\nnothi nothi")
    assert strip_quoted_for_classification(text) == "Our lab is down."


def test_text_after_an_on_wrote_attribution_is_dropped():
    assert strip_quoted_for_classification("ল্যাব নষ্ট\n\nOn Mon, 2 Mar 2026, X <x@example.com> wrote:\nnothi") == "ল্যাব নষ্ট"
    two_lines = "help\nOn Mon, 2 Mar 2026 at 10:00, Office Desk\n<desk@example.gov.bd> wrote:\nnothi"
    assert strip_quoted_for_classification(two_lines) == "help"
    assert strip_quoted_for_classification("সমস্যা\n২ মার্চ, ২০২৬ তারিখে X লিখেছেন:\nনথি") == "সমস্যা"
    assert strip_quoted_for_classification("a\n-----Original Message-----\nb") == "a"


def test_a_mail_clients_sent_from_line_is_dropped():
    assert strip_quoted_for_classification("net nai\n\nSent from my Redmi\nGet Outlook for Android") == "net nai"
    assert strip_quoted_for_classification("I sent from my office yesterday") == "I sent from my office yesterday"


def test_ordinary_lines_are_kept():
    text = "On Sunday the internet went down.\nPlease check -- urgently.\n2 > 1"
    assert strip_quoted_for_classification(text) == text


def test_a_forwarded_message_is_read_without_its_header_block():
    gmail = ("Please arrange this for our staff.\n\n---------- Forwarded message ---------\n"
             "From: District Office <d@x.gov.bd>\nDate: Tue, 14 May 2024\nSubject: e-nothi\nTo: <a@x.gov.bd>\n\n"
             "All offices must start e-nothi.\n> quoted in the forward\n-- \nsignature")
    assert strip_quoted_for_classification(gmail, keep_forwarded=True) == (
        "Please arrange this for our staff.\n\nAll offices must start e-nothi.")
    # without keep_forwarded the forward is cut as before
    assert strip_quoted_for_classification(gmail) == "Please arrange this for our staff."
    apple = "see below\nBegin forwarded message:\n\nFrom: X\nSubject: lab\n\nthe lab is down"
    assert strip_quoted_for_classification(apple, keep_forwarded=True) == "see below\nthe lab is down"
    bengali = "দেখুন\n---------- ফরওয়ার্ড করা মেসেজ ---------\nপ্রেরক: X\nবিষয়: ল্যাব\nল্যাব নষ্ট"
    assert strip_quoted_for_classification(bengali, keep_forwarded=True) == "দেখুন\nল্যাব নষ্ট"


def test_outlooks_original_message_line_is_a_forward_only_under_a_forward_subject():
    text = "FYI, please help\n\n-----Original Message-----\nFrom: X\nSent: Sunday\nSubject: y\n\nthe line is down"
    assert strip_quoted_for_classification(text, keep_forwarded=True) == "FYI, please help"  # a quoted reply
    assert strip_quoted_for_classification(text, keep_forwarded=True, forward=True) == (
        "FYI, please help\n\nthe line is down")
    # an "On ... wrote:" reply inside the forwarded text is still an earlier message
    nested = "see below\n---------- Forwarded message ---------\nFrom: X\n\nnew text\nOn Mon, X wrote:\nold"
    assert strip_quoted_for_classification(nested, keep_forwarded=True) == "see below\nnew text"


def test_read_forwarded_lets_the_forwarded_text_route_the_message():
    body = "Please see below.\n\n---------- Forwarded message ---------\nFrom: Head teacher\n\nOur digital lab is down."
    assert Classifier.from_charter(mini(), "mini.yaml").classify("Fwd: help", body).service is None
    reader = Classifier.from_charter(mini(read_forwarded=True), "mini.yaml")
    c = reader.classify("Fwd: help", body)
    assert c.service == "2.2.7" and ("digital lab", "body") in {(m.rule_term, m.where) for m in c.matched}
    with pytest.raises(ConfigError):
        Classifier.from_charter(mini(read_forwarded="yes"), "mini.yaml")


def test_quoted_words_do_not_route_the_message(clf):
    c = clf.classify("Re: help", "Thanks, see you.\n\nOn Mon, 2 Mar 2026, Desk <d@x.gov.bd> wrote:\n> e-nothi e-nothi")
    assert c.matched == ()


# --- explanations ---------------------------------------------------------------------------------


def test_a_classification_explains_itself_and_serialises(clf):
    c = clf.classify("ই-নথি প্রশিক্ষণ", "আমাদের দপ্তরে ই-নথিতে ডাক")
    assert c.service == "2.2.3"
    assert c.ranking[0] == ("2.2.3", c.score) and c.ranking[1][0] == "2.1.3"
    assert c.margin == c.score - c.ranking[1][1]
    first = c.matched[0]
    assert first == Match("2.2.3", "ই-নথি", "ই নথি", "subject", 10.0)
    d = json.loads(json.dumps(c.to_dict(), ensure_ascii=False))
    assert d["service"] == "2.2.3" and d["ranking"][0] == ["2.2.3", c.score]
    assert {"service", "rule_term", "matched_text", "where", "weight"} <= set(d["matched"][0])


# --- config errors name file and key -------------------------------------------------------------

BAD = [
    ({"2.2.7": {"keywords": {"bn": ["ল্যাব: 3", "ডিজিটাল ল্যাব: x"]}}}, "services.2.2.7.keywords.bn[1]", "weight"),
    ({"2.2.7": {"keywords": {"bn": ["ল্যাব: 0"]}}}, "services.2.2.7.keywords.bn[0]", "above 0"),
    ({"2.2.7": {"keywords": {"bn": ["ল্যাব: 50"]}}}, "services.2.2.7.keywords.bn[0]", "at most"),
    ({"2.2.7": {"keywords": {"bn": ["lab: 3"]}}}, "services.2.2.7.keywords.bn[0]", "Latin"),
    ({"2.2.7": {"keywords": {"en": ["ল্যাব: 3"]}}}, "services.2.2.7.keywords.en[0]", "Bengali"),
    ({"2.2.7": {"keywords": {"fr": ["labo: 3"]}}}, "services.2.2.7.keywords.fr", "unknown list"),
    ({"2.2.7": {"keywords": ["ল্যাব"]}}, "services.2.2.7.keywords", "mapping"),
    ({"2.2.7": {"keywords": {"bn": "ল্যাব"}}}, "services.2.2.7.keywords.bn", "list"),
    ({"2.2.7": {"keywords": {"en": ["lab: 3", "Lab: 2"]}}}, "services.2.2.7.keywords.en[1]", "duplicate"),
    ({"2.2.7": {"keywords": {"banglish": ["p*: 3"]}}}, "services.2.2.7.keywords.banglish[0]", "two letters"),
    ({"2.2.7": {"keywords": {"en": [".. lab: 3"]}}}, "services.2.2.7.keywords.en[0]", "between two words"),
    ({"2.2.7": {"keywords": {"en": ["lab ..: 3"]}}}, "services.2.2.7.keywords.en[0]", "between two words"),
    ({"2.2.7": {"keywords": {"en": ["!!: 3"]}}}, "services.2.2.7.keywords.en[0]", "no letters"),
    ({"2.2.7": {"keywords": {"not": [17]}}}, "services.2.2.7.keywords.not[0]", "term: weight"),
]


@pytest.mark.parametrize("services,key,words", BAD)
def test_keyword_errors_name_the_file_and_the_exact_key(services, key, words):
    with pytest.raises(ConfigError) as err:
        Classifier.from_charter({"services": services}, "config/charter.yaml")
    assert err.value.file == "config/charter.yaml" and err.value.key == key
    assert words in err.value.message


@pytest.mark.parametrize("section,key,words", [
    ({"min_score": "high"}, "classifier.min_score", "number"),
    ({"min_margin": -1}, "classifier.min_margin", "between"),
    ({"subject_weigth": 2}, "classifier.subject_weigth", "unknown setting"),
    ({"confident_score": 1, "min_score": 3}, "classifier.confident_score", "min_score"),
    ({"out_of_scope": {"bn": ["খতিয়ান: many"]}}, "classifier.out_of_scope.bn[0]", "weight"),
    ({"out_of_scope": {"nto": ["x"]}}, "classifier.out_of_scope.nto", "unknown list"),
    ({"thanks_only": {"thanks": {"not": ["x"]}, "unless": {"en": ["please"]}}}, "classifier.thanks_only.thanks.not",
     "unknown list"),
    ({"bn_suffixes": ["ের", "er"]}, "classifier.bn_suffixes[1]", "Bengali ending"),
    ({"damp_parts": "yes"}, "classifier.damp_parts", "true or false"),
    ({"body_overrules_subject": 1}, "classifier.body_overrules_subject", "true or false"),
    ({"absorb": ["2.2.7"]}, "classifier.absorb", "map a service code"),
    ({"absorb": {"2.2.7": "2.2.10"}}, "classifier.absorb.2.2.7", "list of service codes"),
    ({"absorb": {"2.2.7": ["2.2.7"]}}, "classifier.absorb.2.2.7", "itself"),
    ({"absorb": {"2.2.7": ["2.2.99"]}}, "classifier.absorb.2.2.7[0]", "no service"),
    ({"absorb": {"2.9.9": ["2.2.7"]}}, "classifier.absorb.2.9.9", "no service"),
    ({"thanks_only": ["ধন্যবাদ"]}, "classifier.thanks_only", "mapping"),
    ({"thanks_only": {"thanks": {"en": ["thanks"]}}}, "classifier.thanks_only.unless", "polite request"),
    ({"thanks_only": {"unless": {"en": ["please"]}}}, "classifier.thanks_only.thanks", "word of thanks"),
    ({"thanks_only": {"thanks": {"en": ["thanks"]}, "unles": {}}}, "classifier.thanks_only.unles", "unknown key"),
    ({"thanks_only": {"thanks": {"not": ["x"]}, "unless": {"en": ["please"]}}}, "classifier.thanks_only.thanks.not",
     "unknown list"),
])
def test_classifier_section_errors_name_the_key(section, key, words):
    raw = {"services": {"2.2.7": {"keywords": {"bn": ["ল্যাব: 3"]}}}, "classifier": section}
    with pytest.raises(ConfigError) as err:
        load_rules(raw, "charter.yaml")
    assert err.value.key == key and words in err.value.message


def test_a_rule_written_without_quotes_is_read_as_term_and_weight():
    # YAML turns `- ল্যাব: 3` into a mapping; a clerk who forgot the quotes still gets the rule.
    raw = yaml.safe_load("services:\n  '2.2.7':\n    keywords:\n      bn:\n        - ল্যাব: 3\n        - ডিজিটাল ল্যাব\n")
    rules = load_rules(raw, "c.yaml")
    assert [(t.text, t.weight) for t in rules.terms] == [("ল্যাব", 3.0), ("ডিজিটাল ল্যাব", 1.0)]


def test_a_service_without_keywords_is_reported_but_loads():
    c = Classifier.from_charter({"services": {"2.2.7": {"keywords": {"en": ["lab: 3"]}}, "2.2.8": {"keywords": {}}}},
                                "c.yaml")
    assert c.warnings == ["services.2.2.8.keywords: no keywords, so no mail can reach this service"]


# --- the shipped rules ------------------------------------------------------------------------------


def test_the_shipped_charter_has_rules_for_all_14_services(shipped):
    assert len(shipped.rules.services) == 14
    for code in shipped.rules.services:
        assert any(t.service == code and not t.negative for t in shipped.rules.terms), code
    assert shipped.rules.out_of_scope and shipped.warnings == []


@pytest.mark.parametrize("subject,body,service", [
    ("শেখ রাসেল ডিজিটাল ল্যাবের ল্যাপটপ নষ্ট", "", "2.2.7"),
    ("lab e net nai", "Info Sarkar er line school office e ashe, lab e cable gese", "2.2.7"),
    ("", "amader union er UDC te net khub slow", "2.2.9"),
    ("e-nothi training", "", "2.2.3"),
    ("", "Sir amader office e info sorkar line e 2 din dhore net nei", "2.2.10"),
    ("", "আমার ফেসবুক আইডি হ্যাক হয়েছে, উদ্ধার করে দেন", None),
    # questions about the office itself
    ("Is the office open on Saturday?", "Which building is it in, and until what time are you open?", "2.1.1"),
    ("", "sir apnader office ta kon building e? shukrobar ki bondho thake?", "2.1.1"),
    ("", "আপনাদের কার্যালয় থেকে কোন কোন সেবা পাওয়া যায় এবং কত সময় লাগে?", "2.1.1"),
    # "when will our school/union get it" is a project question, not a lab or line fault
    ("", "আমাদের বিদ্যালয়ে কি ল্যাব দেওয়া হবে? তালিকায় নাম আছে কিনা জানতে চাই", "2.1.3"),
    ("", "amader union e line kobe ashbe? onno union e line ase", "2.1.3"),
    ("", "Our school has no computer lab. How can we be included in the next list?", "2.1.3"),
    # a virus or a hacked office account that needs fixing now is a fault, not an awareness session
    ("Virus on office PC", "Files turn into shortcuts and the antivirus cannot remove it. Please send someone.", "2.2.5"),
    # thank-you notes, personal devices and offers are out of scope even when they name a service
    ("Thanks for the e-Nothi training", "Our staff found it very useful.", None),
    ("ধন্যবাদ", "ইউডিসির ইন্টারনেট এখন ভালো চলছে, দ্রুত সমাধানের জন্য ধন্যবাদ।", None),
    ("", "sir amar fb id hack hoye gese, ferot pete help korben", None),
    ("", "আমার নিজের ল্যাপটপ চালু হয় না, ঠিক করে দেওয়া যাবে? টাকা দিব", None),
    # ...but a terse fault report that ends with thanks is a request
    ("Printer", "The office printer is not working. Thanks", "2.2.5"),
    ("", "স্যার, অফিসের প্রিন্টার নষ্ট। ধন্যবাদ।", "2.2.5"),
    # a projector is not a project; a fault or a purchase at a UDC or a school lab is the place's service
    ("প্রজেক্টর", "মিটিং রুমের প্রজেক্টর ল্যাপটপের সাথে কানেক্ট হয় না, নো সিগন্যাল দেখায়।", "2.2.5"),
    ("bangla font", "sir, UDC er notun laptop e bangla font nai, install hoy na", "2.2.9"),
    ("", "স্যার ল্যাবের ওয়াইফাই কাজ করছে না, রাউটারে লাল বাতি জ্বলে। আইসিটি শিক্ষক", "2.2.7"),
    # the lab's name in the subject does not make "when will our school get one" lab support
    ("শেখ রাসেল ডিজিটাল ল্যাব প্রাপ্তির বিষয়ে", "আমাদের বিদ্যালয় পরবর্তী পর্যায়ের তালিকায় অন্তর্ভুক্ত "
     "হয়েছে কিনা এবং কবে নাগাদ ল্যাব স্থাপন হবে জানাবেন।", "2.1.3"),
    ("স্কুলে কম্পিউটার ল্যাব", "আমাদের স্কুলে এখনো কোনো কম্পিউটার ল্যাব নেই। কীভাবে আবেদন করতে পারি?", "2.1.3"),
    # training ON e-Nothi is 2.2.3, not general staff training; a signature certificate is 2.2.8
    ("ই-নথি প্রশিক্ষণের অধিযাচন", "কর্মকর্তা ও কর্মচারীগণকে ই-নথি বিষয়ে প্রশিক্ষণ আয়োজনের জন্য অধিযাচন পাঠানো হলো।",
     "2.2.3"),
    ("", "ডিজিটাল সার্টিফিকেট দিয়ে ই-নথিতে পত্রে স্বাক্ষর করতে চাই, টোকেন কোথায় পাব?", "2.2.8"),
    # a social-services allowance database is automation, not a project's allowance
    ("Software for allowance beneficiary records", "We keep old-age and widow allowance beneficiaries in Excel "
     "files. We would like a database or web application to enter changes and generate reports.", "2.2.4"),
    # asking the office to give a device, other offices' programmes: out of scope
    ("laptop dorkar", "ami gorib chatro, laptop kinte parchi na. apnader office theke amake ekta laptop dite "
     "parben?", None),
    ("সার ও বীজ প্রাপ্তির আবেদন", "এ বছর সরকারি প্রণোদনার সার ও বীজ পাইনি। আমার নাম তালিকায় অন্তর্ভুক্ত করুন।", None),
])
def test_shipped_rules_follow_the_boundary_table(shipped, subject, body, service):
    assert shipped.classify(subject, body).service == service


def _corpus(directory: Path, classifier):
    with open(directory / "labels.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    pairs = []
    for row in rows:
        subject, text, html = subject_and_bodies((directory / row["file"]).read_bytes())
        pairs.append((row["file"], row["label"], classifier.classify(subject, text, html)))
    return pairs


def test_dev_corpus_macro_f1_and_no_confident_routing_of_out_of_scope_mail(shipped):
    report = evaluate(_corpus(CORPUS_DEV, shipped))
    assert report.total == 113 and len(report.labels) == 15
    # measured 1.000 macro-F1, 113/113; the floor leaves room for a clerk's small edits
    assert report.macro_f1 >= 0.97, report.to_text()
    assert report.accuracy >= 0.97
    assert report.confident_out_of_scope == []
    assert [m.file for m in report.misrouted if m.expected == "none"] == []  # none routed at all


def test_own_held_out_mail(shipped):
    # 270 messages written in six batches, each before the rules were adjusted for it; the rules have
    # since seen them all, so this guards against regressions rather than measuring unseen mail.
    report = evaluate(_corpus(OWN_MAIL, shipped))
    assert report.total == 270 and len(report.labels) == 15
    assert report.accuracy >= 0.97 and report.macro_f1 >= 0.97, report.to_text()  # measured 0.996 / 0.997
    # one known case: a citizen asking for a paid computer course "even if not a government project"
    assert len(report.confident_out_of_scope) <= 1, report.confident_out_of_scope


def test_round_two_mail(shipped):
    # 97 messages written before the rules were broadened for them; first seen at 0.773 accuracy and
    # 0.764 macro-F1. The rules have since seen them too, so the floor guards against regressions.
    report = evaluate(_corpus(ROUND2, shipped))
    assert report.total == 97 and len(report.labels) == 15
    assert report.accuracy >= 0.95 and report.macro_f1 >= 0.95, report.to_text()  # measured 1.000 / 1.000
    assert report.confident_out_of_scope == []


def test_first_blind_set_now_used_as_development_mail(shipped):
    # 150 messages by another author; blind until round 3 (0.907 / 0.916), then used for tuning, so this
    # guards against regressions. Unseen mail was then measured on holdout-blind2 (see below).
    report = evaluate(_corpus(BLIND1, shipped))
    assert report.total == 150 and len(report.labels) == 15
    assert report.accuracy >= 0.97 and report.macro_f1 >= 0.97, report.to_text()  # measured 1.000 / 1.000
    assert report.confident_out_of_scope == []


def test_second_blind_set_now_used_as_development_mail(shipped):
    # 150 messages in indirect, colloquial, symptom-describing phrasing; blind until round 4 (0.813 / 0.832,
    # "none" precision 0.51), then used for tuning, so this guards against regressions. Unseen mail is
    # measured on holdout-blind3, which no test reads.
    report = evaluate(_corpus(BLIND2, shipped))
    assert report.total == 150 and len(report.labels) == 15
    assert report.accuracy >= 0.95 and report.macro_f1 >= 0.95, report.to_text()  # measured 0.993 / 0.993
    assert report.per_label["none"].precision >= 0.9
    assert report.confident_out_of_scope == []


# --- evaluation, lint, suggestions ------------------------------------------------------------------


def _c(service, score=5.0, confident=False, matched=()):
    return Classification(service, score, 2.0, ((service or "none", score),), tuple(matched), "", confident)


def test_evaluate_counts_precision_recall_f1_and_the_confusion_matrix():
    pairs = [("a", "2.2.7", _c("2.2.7")), ("b", "2.2.7", _c("2.2.10")), ("c", "2.2.10", _c("2.2.10")),
             ("d", "none", _c(None)), ("e", "none", _c("2.2.7", confident=True))]
    r = evaluate(pairs)
    assert r.total == 5 and r.correct == 3 and r.accuracy == pytest.approx(0.6)
    lab = r.per_label["2.2.7"]
    assert (lab.precision, lab.recall, lab.support, lab.predicted) == (0.5, 0.5, 2, 2)
    assert r.per_label["2.2.10"].f1 == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert r.per_label["none"].precision == 1.0 and r.per_label["none"].recall == 0.5
    assert r.macro_f1 == pytest.approx((0.5 + 2 / 3 + 2 / 3) / 3)
    assert r.confusion["2.2.7"] == {"2.2.7": 1, "2.2.10": 1}
    assert [m.file for m in r.misrouted] == ["b", "e"] and r.confident_out_of_scope == ["e"]
    assert r.labels == ["2.2.7", "2.2.10", "none"]  # charter order, "none" last
    text = r.to_text()
    assert "accuracy 0.600 (3/5)" in text and "b: expected 2.2.7, got 2.2.10" in text
    assert json.loads(json.dumps(r.to_dict()))["per_label"]["2.2.7"]["recall"] == 0.5


def test_evaluate_over_a_fixed_label_list_counts_unseen_labels_as_zero():
    r = evaluate([("a", "2.2.7", _c("2.2.7"))], labels=["2.2.7", "2.2.8"])
    assert r.macro_f1 == pytest.approx(0.5)


def test_lint_warns_about_shared_and_unused_keywords():
    raw = {"services": {"2.2.7": {"keywords": {"en": ["lab: 3", "computer lab: 5"]}},
                        "2.2.5": {"keywords": {"en": ["lab: 1", "printer: 2"]}}}}
    rules = load_rules(raw, "c.yaml")
    used = [_c("2.2.7", matched=[Match("2.2.7", "lab", "lab", "body", 3)])]
    warnings = lint(rules, used)
    shared = {w.key for w in warnings if w.kind == "shared"}
    unused = {w.key for w in warnings if w.kind == "unused"}
    assert shared == {"services.2.2.7.keywords.en[0]", "services.2.2.5.keywords.en[0]"}
    assert unused == {"services.2.2.7.keywords.en[1]", "services.2.2.5.keywords.en[0]",
                      "services.2.2.5.keywords.en[1]"}
    assert "also a keyword of 2.2.5" in str(next(w for w in warnings if w.key == "services.2.2.7.keywords.en[0]"))


def test_lint_without_a_corpus_reports_shared_keywords_only():
    raw = {"services": {"2.2.7": {"keywords": {"en": ["lab: 3"]}}, "2.2.5": {"keywords": {"en": ["lab: 1"]}}}}
    rules = load_rules(raw, "c.yaml")
    assert {w.kind for w in lint(rules, None)} == {"shared"} and lint(rules) == lint(rules, [])


def test_suggest_mines_words_that_officers_keep_moving_to_a_service():
    corrections = [
        ("আমাদের স্কুলের ল্যাবে মনিটর নষ্ট", "2.2.5", "2.2.7"),
        ("স্কুলের ল্যাবের মনিটর জ্বলে না", None, "2.2.7"),
        ("Sir, the monitor in our school is broken", "2.2.5", "2.2.7"),
        ("স্কুলের অফিস কম্পিউটার নষ্ট", "2.2.7", "2.2.5"),
        ("অফিসের কম্পিউটার নষ্ট", "2.2.7", "2.2.5"),
        ("স্কুলের প্রিন্টার নষ্ট", "2.2.7", "2.2.5"),
        ("spam spam", "2.2.5", "none"),
    ]
    out = suggest(corrections)
    got = {(s, t): n for s, t, n in out}
    assert got[("2.2.7", "মনিটর")] == 2
    assert ("2.2.7", "স্কুল") not in got  # also moved to 2.2.5 just as often
    assert got[("2.2.5", "কম্পিউটার")] == 2 and ("2.2.5", "নষ্ট") in got
    assert not any(s == "none" for s, _, _ in out) and not any(t in ("আমাদের", "the") for _, t, _ in out)
    known = load_rules({"services": {"2.2.7": {"keywords": {"bn": ["মনিটর: 2"]}}}}, "c.yaml")
    assert ("2.2.7", "মনিটর") not in {(s, t) for s, t, _ in suggest(corrections, rules=known)}


# --- robustness -----------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=80), st.text(max_size=300))
def test_any_text_gets_a_consistent_decision(subject, body):
    for charter in (mini(), mini(thanks_only=THANKS_ONLY)):
        c = Classifier.from_charter(charter, "mini.yaml").classify(subject, body)
        assert c.ranking == tuple(sorted(c.ranking, key=lambda cv: -cv[1]))
        if c.service is not None:
            assert c.score >= 3 and c.margin >= 1.5 and c.ranking[0][0] == c.service
            assert all(m.weight != 0 for m in c.matched)  # no thank-you words behind a routed message
        json.dumps(c.to_dict())


def test_eml_helper_reads_encoded_subjects_and_html_only_bodies():
    raw = ("From: a@example.com\nSubject: =?utf-8?b?4KaySOCmvuCmrA==?=\nMIME-Version: 1.0\n"
           "Content-Type: text/html; charset=utf-8\n\n<p>lab</p>\n").encode()
    subject, text, html = subject_and_bodies(raw)
    assert html and "<p>lab</p>" in html and not text.strip()
