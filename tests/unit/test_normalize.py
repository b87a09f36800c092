"""Text normalisation for keyword matching: one form for every spelling a sender's device produces."""

import unicodedata

from hypothesis import given, strategies as st

from maildesk.rules.normalize import (
    banglish_key,
    banglish_standard,
    banglish_stems,
    bn_standard,
    bn_stems,
    en_stems,
    fold_bn,
    html_to_text,
    normalize,
    tokenize,
)

# --- Unicode forms ------------------------------------------------------------------------------


def test_precomposed_and_nukta_sequences_of_ya_rra_rha_are_the_same_word():
    assert normalize("ইউনি\u09dfন") == normalize("ইউনি\u09af\u09bcন")  # য়
    assert normalize("প\u09dcা") == normalize("প\u09a1\u09bcা")  # ড়
    assert normalize("আ\u09ddে") == normalize("আ\u09a2\u09bcে")  # ঢ়
    assert "\u09df" not in normalize("ইউনি\u09dfন")


def test_decomposed_vowel_signs_are_composed():
    decomposed = "ক\u09c7\u09be"  # ক + ে + া, which NFC composes into ক + ো
    assert normalize(decomposed) == "কো"
    assert normalize(decomposed) == normalize(unicodedata.normalize("NFC", decomposed))


def test_vowel_signs_joined_by_removing_a_joiner_are_composed():
    assert normalize("ক\u09c7\u200c\u09be") == normalize("কো") == "ক\u09cb"


def test_zero_width_joiners_are_removed():
    assert normalize("র\u200d্যাব") == normalize("র্যাব")
    assert normalize("ল্\u200cযাপটপ") == normalize("ল্যাপটপ")
    assert normalize("e\u200bnothi\ufeff") == "enothi"


def test_bengali_digits_become_ascii_digits():
    assert normalize("০১৭১২-৩৪৫৬৭৮, ২০২৬") == "01712 345678 2026"
    assert tokenize("৩য় পর্যায়") == ["3", "য়", "পর্যায়"]


def test_latin_case_is_folded():
    assert normalize("Info-SARKAR UDC e-Nothi") == "info sarkar udc e nothi"


def test_accented_latin_letters_lose_their_accents_and_bengali_marks_stay():
    assert normalize("Pôysa RÉSUMÉ naïve İstanbul") == "poysa resume naive istanbul"
    assert normalize("Straße æ") == "strasse æ"  # no accent to take off
    assert normalize("কম্পিউটারে ল্যাবের") == "কম্পিউটারে ল্যাবের"  # hasanta and vowel signs are kept
    assert tokenize("taka pôysa") == ["taka", "poysa"]


def test_danda_quotes_and_punctuation_become_spaces():
    assert normalize("ল্যাব নষ্ট। “ইন্টারনেট” নেই॥ (জরুরি) — ‘ভাই’!") == "ল্যাব নষ্ট ইন্টারনেট নেই জরুরি ভাই"
    assert normalize("can't, UDC's") == "cant udcs"


def test_a_latin_word_glued_to_a_bengali_ending_is_two_tokens():
    assert tokenize("UDCতে net নাই") == ["udc", "তে", "net", "নাই"]
    assert tokenize("D-Nothiতে") == ["d", "nothi", "তে"]


def test_empty_and_none_normalise_to_nothing():
    assert normalize(None) == "" and normalize("") == "" and tokenize("  ।  ") == []


# --- HTML ---------------------------------------------------------------------------------------


def test_html_becomes_visible_text_one_line_per_block():
    html = ("<html><head><style>p{color:red}</style><title>x</title></head><body>"
            "<div>ল্যাবের&nbsp;রাউটার</div><p>A &amp; B<br>C</p><script>alert(1)</script></body></html>")
    assert html_to_text(html) == "ল্যাবের রাউটার\nA & B\nC"


def test_broken_html_does_not_raise():
    assert "text" in html_to_text("<div><p>text <b>bold</div></p><<>")
    assert html_to_text(None) == ""


# --- Bengali inflection and spelling ------------------------------------------------------------


def test_inflected_bengali_words_reduce_to_their_stem():
    assert "ল্যাপটপ" in bn_stems("ল্যাপটপের")
    assert "ল্যাব" in bn_stems("ল্যাবে")
    assert "কম্পিউটার" in bn_stems("কম্পিউটারগুলো")
    assert "কম্পিউটার" in bn_stems("কম্পিউটারগুলোতে")
    assert "অফিস" in bn_stems("অফিসের")
    assert "দপ্তর" in bn_stems("দপ্তরসমূহের")
    assert fold_bn("নথি") in bn_stems("নথিতে")


def test_the_genitive_r_and_locative_y_come_off_only_after_a_vowel():
    # সেবা + র, ইউডিসি + র, সেবা + য়: a vowel ends the stem
    assert "সেবা" in bn_stems("সেবার") and fold_bn("ইউডিসি") in bn_stems("ইউডিসির")
    assert "সেবা" in bn_stems("সেবায়")
    # after a consonant the endings are -এর/-ের and -এ: প্রজেক্টর is a projector, not a project
    assert "প্রজেক্ট" not in bn_stems("প্রজেক্টর") and "প্রজেক্ট" not in bn_stems("প্রজেক্টরে")
    assert "প্রজেক্টর" in bn_stems("প্রজেক্টরের")
    assert fold_bn("বিষ") not in bn_stems("বিষয়")


def test_process_and_basis_endings_of_formal_bengali_come_off():
    assert "হালনাগাদ" in bn_stems("হালনাগাদকরণ") and "হালনাগাদ" in bn_stems("হালনাগাদকরণে")
    assert "অনলাইন" in bn_stems("অনলাইনকরন")
    assert "ডাটাবেজ" in bn_stems("ডাটাবেজভিত্তিক")


def test_a_colloquial_continuous_verb_also_has_its_standard_form():
    assert "করছে" in bn_stems("করতেছে") and "চলছে" in bn_stems("চলতাছে")
    assert "হচ্ছে" in bn_stems("হইতেছে") and "যাচ্ছে" in bn_stems("যাইতাছে") and "পারছি" in bn_stems("পারতেছি")
    assert "দিচ্ছে" in bn_stems("দিতেছে") and "করছি" in bn_stems("করতেসি")
    assert banglish_key("korche") in banglish_stems("kortese")
    assert banglish_key("hocche") in banglish_stems("hoitese")
    assert banglish_key("pacchi") in banglish_stems("paitesi")
    assert banglish_key("cholche") in banglish_stems("cholteche")
    # words that only end in the same letters are left as they are
    assert bn_stems("পরিবেশ") == {fold_bn("পরিবেশ")}
    assert bn_standard("তেছে") is None and banglish_standard("tese") is None


def test_sadhu_verb_forms_also_have_their_standard_form():
    assert "করছে" in bn_stems("করিতেছে") and "লিখছে" in bn_stems("লিখিতেছে")
    assert "করেছে" in bn_stems("করিয়াছে") and "হয়েছে" in bn_stems("হইয়াছে")
    assert "করে" in bn_stems("করিয়া") and "দিয়ে" in bn_stems("দিয়া") and "জানিয়ে" in bn_stems("জানাইয়া")
    assert "করবে" in bn_stems("করিবে") and "হবে" in bn_stems("হইবে") and "লাগবে" in bn_stems("লাগিবে")
    assert "করব" in bn_stems("করিব") and "থাকব" in bn_stems("থাকিবো")
    assert "করতে" in bn_stems("করিতে") and "হতে" in bn_stems("হইতে")
    assert "করলে" in bn_stems("করিলে") and "জানালে" in bn_stems("জানাইলে")
    assert "করল" in bn_stems("করিল") and "হলো" in bn_stems("হইলো")


def test_regional_spoken_forms_also_have_their_standard_form():
    assert "হয়েছে" in bn_stems("হইছে") and "পাঠিয়েছিলাম" in bn_stems("পাঠাইছিলাম")
    assert "দিয়েছে" in bn_stems("দিছে") and "হবে" in bn_stems("হইবো") and "যাব" in bn_stems("যামু")
    assert "আমাদের" in bn_stems("আমরার") and "বললো" in bn_stems("কইলো") and "থেকে" in bn_stems("থাইকা")
    assert "আপনাদের" in bn_stems("আপনাগো") and "ভেঙে" in bn_stems("ভাইঙ্গা")
    assert "আসতে" in bn_stems("আইতে") and "মেয়েদের" in bn_stems("মাইয়াগো") and "করছেন" in bn_stems("করতাছেন")
    # a regional word is not also read as a verb pattern: কইলো is not কল ("call")
    assert "কল" not in bn_stems("কইলো")


def test_a_verb_ending_is_the_same_with_or_without_its_final_o():
    assert "করব" in bn_stems("করবো") and "করবো" in bn_stems("করব")
    assert "বলল" in bn_stems("বললো") and fold_bn("হত") in bn_stems("হতো")
    # words that only look similar keep their own form and nothing a rule would use
    assert bn_stems("পরিবেশ") == {fold_bn("পরিবেশ")}
    assert "সংযুক্তো" not in bn_stems("সংযুক্ত")


def test_banglish_spoken_perfect_with_s_also_has_the_standard_key():
    for spoken, standard in (("korsi", "korechi"), ("gese", "geche"), ("hoise", "hoyeche"), ("dise", "diyeche"),
                             ("paisi", "peyechi"), ("korsen", "korechen"), ("ase", "ache"), ("bolse", "boleche")):
        assert banglish_key(standard) in banglish_stems(spoken), spoken
    # a double s is not the spoken ch, and words without the ending are left alone
    assert banglish_stems("class") == banglish_stems("clas") and banglish_key("kache") not in banglish_stems("case")


def test_a_fault_verb_in_one_aspect_also_stands_for_the_other():
    # হয় না / হচ্ছে না, নেয় না / নিচ্ছে না: a rule written with either form matches both
    assert "হচ্ছে" in bn_stems("হয়") and "হয়" in bn_stems("হচ্ছে")
    assert "নিচ্ছে" in bn_stems("নেয়") and "টানে" in bn_stems("টানছে")
    assert "হচ্ছে" in bn_stems("হইতেছে")  # spoken form -> standard -> other aspect
    assert banglish_key("hocche") in banglish_stems("hoy") and banglish_key("kore") in banglish_stems("korche")
    # nai ("not") is not a form of any verb, and khola ("open") is not khulche
    assert banglish_key("nicche") not in banglish_stems("nai")
    assert banglish_key("khulche") not in banglish_stems("khola")


def test_words_that_merely_start_like_a_stem_are_not_that_word():
    assert "ল্যাব" not in bn_stems("ল্যাবরেটরি")
    assert "নথি" not in bn_stems("নথিভুক্ত")
    assert "সেবা" not in bn_stems("সেবাগ্রহীতা")


def test_common_spelling_variants_fold_together():
    assert fold_bn("সরকারী") == fold_bn("সরকারি")
    assert fold_bn("পন্য") == fold_bn("পণ্য")
    assert fold_bn("প্রসিক্ষন") == fold_bn("প্রশিক্ষণ")


def test_english_plurals_tenses_and_banglish_endings():
    assert "laptop" in en_stems("laptops")
    assert "configure" in en_stems("configured")
    assert "automate" in en_stems("automating")
    assert "lab" in en_stems("labe") and "nothi" in en_stems("nothite")
    assert "office" not in en_stems("officer")


# --- Banglish ------------------------------------------------------------------------------------


def test_banglish_spelling_variants_share_a_key():
    assert banglish_key("proshikkhon") == banglish_key("proshikhon") == banglish_key("prosikkhon")
    assert banglish_key("nai") == banglish_key("nei")
    assert banglish_key("valo") == banglish_key("bhalo")
    assert banglish_key("kobe") == banglish_key("kabe")
    assert banglish_key("sorkar") == banglish_key("sarkar") == banglish_key("sarker")
    assert banglish_key("uddokta") == banglish_key("udokta")


def test_banglish_keys_keep_different_words_apart():
    assert banglish_key("khata") != banglish_key("kotha")  # ledger / talk: aspiration matters
    assert banglish_key("nai") != banglish_key("na")
    assert banglish_key("lab") != banglish_key("lap")


def test_banglish_case_endings_reduce_to_the_word():
    assert banglish_key("nothi") in banglish_stems("nothite")
    assert banglish_key("nothi") in banglish_stems("nothir")
    assert banglish_key("center") in banglish_stems("centere")


# --- properties -----------------------------------------------------------------------------------

_text = st.text(alphabet=st.sampled_from(list("অআইকখগঘলরসনমপয়ড়ঢ়়্ািীুূেৈোৌং০১২৩।,.!?\"'“” -\u200c\u200d"
                                              "abcdeABCDE0123\n\t<>&")), max_size=60)


@given(_text)
def test_normalize_is_idempotent_and_leaves_no_punctuation_or_joiners(text):
    once = normalize(text)
    assert normalize(once) == once
    assert not any(ch in once for ch in "।,.!?\"'“”-\u200c\u200d\u09df\u09dc\u09dd\t\n")
    assert "  " not in once and once == once.strip()


@given(_text)
def test_tokens_are_never_empty_and_rejoin_to_the_normal_form(text):
    tokens = tokenize(text)
    assert all(tokens)
    assert "".join(tokens) == normalize(text).replace(" ", "")
