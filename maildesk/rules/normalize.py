"""Text normalisation for keyword matching.

Mail to the office arrives in Bengali, English and Banglish (Bengali typed in Latin letters), from
phones that type nukta letters precomposed and from desktops that don't, with Bengali or Latin digits,
HTML-only bodies and inflected words. The classifier compares words only after they have been brought
to one form here, so a clerk writes a keyword once and it matches all of those spellings.

Everything here is pure and deterministic: text in, text out.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from maildesk.ingest.htmltext import html_to_text as _desk_html_to_text

__all__ = [
    "normalize",
    "tokenize",
    "html_to_text",
    "fold_bn",
    "is_bengali",
    "is_latin",
    "bn_stems",
    "en_stems",
    "banglish_key",
    "banglish_stems",
    "bn_standard",
    "bn_register_forms",
    "banglish_standard",
    "DEFAULT_BN_SUFFIXES",
]

# One translation table does the per-character work in a single C-level pass:
#  * invisible characters that change bytes but not the word vanish: ZWNJ, ZWJ, zero-width space,
#    word joiner, BOM, soft hyphen;
#  * য় ড় ঢ় have a precomposed code point (phones) and a base+nukta sequence (NFC): use the sequence;
#  * Bengali digits become ASCII digits;
#  * apostrophes inside words vanish ("can't" -> "cant", "UDC's" -> "udcs");
#  * accented Latin letters lose their accents ("résumé" -> "resume", an autocorrected "pôysa" ->
#    "poysa"); Bengali vowel signs are marks too but are never touched;
#  * letters, marks (Bengali vowel signs, hasanta) and digits stay; everything else (danda, quotes,
#    hyphens, punctuation, symbols) becomes a space.
_FIXED: dict[int, str | None] = {
    **dict.fromkeys(map(ord, "\u200c\u200d\u200b\u2060\ufeff\u00ad"), None),
    **{ord(c): s for c, s in {"\u09dc": "\u09a1\u09bc", "\u09dd": "\u09a2\u09bc",
                              "\u09df": "\u09af\u09bc"}.items()},
    **{ord(b): a for b, a in zip("০১২৩৪৫৬৭৮৯", "0123456789")},
    **dict.fromkeys(map(ord, "'\u2019\u2018\u02bc`"), None),
}


class _Table(dict):
    """str.translate table, filled lazily: one entry per distinct character ever seen."""

    def __missing__(self, code: int):
        ch = chr(code)
        if 0xC0 <= code <= 0x24F and unicodedata.category(ch)[0] == "L":  # Latin-1 and Latin Extended
            base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
            value = base if base.isascii() and base.isalpha() else code
        else:
            value = code if unicodedata.category(ch)[0] in "LMN" else " "
        self[code] = value
        return value


_TABLE = _Table(_FIXED)


def normalize(text: str | None) -> str:
    """One canonical form: NFC, nukta unified, no ZWJ/ZWNJ, ASCII digits, case folded, no punctuation.

    The result is words separated by single spaces. Danda (।), quotes, hyphens and every other
    punctuation or symbol become spaces.
    """
    if not text:
        return ""
    text = unicodedata.normalize("NFC", text).translate(_TABLE).casefold()
    if not unicodedata.is_normalized("NFC", text):  # a joiner removed between two vowel signs (ে + া = ো)
        text = unicodedata.normalize("NFC", text)
    return " ".join(text.split())


_SCRIPT_SPLIT = re.compile(r"(?<=[a-z0-9])(?=[\u0980-\u09ff])|(?<=[\u0980-\u09ff])(?=[a-z])")


def tokenize(text: str | None) -> list[str]:
    """Words of normalised text; a Latin word glued to a Bengali suffix ("UDCতে") is split in two."""
    norm = normalize(text)
    if not norm:
        return []
    tokens: list[str] = []
    for word in norm.split(" "):
        if word.isascii():
            tokens.append(word)
        else:
            tokens.extend(part for part in _SCRIPT_SPLIT.split(word) if part)
    return tokens


def is_bengali(word: str) -> bool:
    return any("\u0980" <= ch <= "\u09ff" for ch in word)


def is_latin(word: str) -> bool:
    return word.isascii() and any(ch.isalpha() for ch in word)


# --- HTML --------------------------------------------------------------------------------------

def html_to_text(html: str | None) -> str:
    """Visible text of an HTML body, one line per block (the desk's one converter, blank lines dropped)."""
    text = _desk_html_to_text(html or "")
    return "\n".join(line for line in text.split("\n") if line.strip())


# --- Bengali: spelling fold and inflection ------------------------------------------------------

# Spellings that vary in everyday typing without changing the word: long/short i and u, the two n's,
# the three s's, chandrabindu, khanda ta. Applied to both keyword and text, never shown to anyone.
_BN_FOLD = str.maketrans({"ী": "ি", "ূ": "ু", "ঈ": "ই", "ঊ": "উ", "ণ": "ন", "শ": "স", "ষ": "স",
                          "ৎ": "ত", "ঁ": None})


def fold_bn(word: str) -> str:
    """Loose Bengali key: সরকারী/সরকারি, পন্য/পণ্য, প্রশিক্ষণ/প্রসিক্ষন compare equal."""
    return word.translate(_BN_FOLD)


# Case endings, classifiers, plurals and particles that Bengali glues to a noun. A word matches a
# keyword when it is the keyword followed by up to three of these (ল্যাব + ে + র = ল্যাবের,
# কম্পিউটার + গুলো + তে). Words that merely start with the keyword (ল্যাবরেটরি) do not match.
#
# Two endings of formal Bengali turn a noun into a process or a basis and are glued on just like the
# case endings: -করণ (হালনাগাদকরণ "updating", অনলাইনকরণ "putting online", চালুকরণ) and -ভিত্তিক
# (ডাটাবেজভিত্তিক "database-based"). Taking them off lets হালনাগাদ or অনলাইন match those words too.
DEFAULT_BN_SUFFIXES: tuple[str, ...] = (
    "ে", "র", "এর", "ের", "য়ের", "য়", "য়ে", "এ", "কে", "রে", "তে", "েতে",
    "টি", "টা", "টো", "টু", "খানা", "খানি",
    "গুলো", "গুলি", "গুলা", "গুলোন", "সমূহ", "সমুহ", "সকল", "দের", "রা", "েরা", "এরা", "গন", "গণ",
    "দ্বয়", "ও", "ই", "েই", "তেও", "তেই", "করণ", "ভিত্তিক",
)

# The genitive -র (-রে) and the locative -য়/-য়ে follow a vowel only (সেবার, ইউডিসির, সেবায়); after a
# consonant the endings are -এর/-ের and -এ/-ে. Without this check প্রজেক্টর (projector) would be
# প্রজেক্ট (project) + র, and বিষয় (subject) would be বিষ + য়.
_AFTER_VOWEL_ONLY = frozenset({"র", "রে", "য়", "য়ে"})
_VOWELS = frozenset("অআইঈউঊঋএঐওঔ" "ািীুূৃৄেৈোৌৗ")
_AFTER_VOWEL_ONLY_FOLDED = frozenset(fold_bn(normalize(s)) for s in _AFTER_VOWEL_ONLY)


def _prepare_suffixes(suffixes) -> tuple[str, ...]:
    folded = {fold_bn(normalize(s).replace(" ", "")) for s in suffixes}
    return tuple(sorted((s for s in folded if s), key=len, reverse=True))


@lru_cache(maxsize=64)
def _suffix_table(suffixes: tuple[str, ...]) -> tuple[str, ...]:
    return _prepare_suffixes(suffixes)


def _strip(word: str, suffixes: tuple[str, ...], depth: int, min_len: int, out: set[str],
           after_vowel: frozenset = frozenset()) -> None:
    if depth == 0:
        return
    for suf in suffixes:
        if word.endswith(suf) and len(word) - len(suf) >= min_len:
            stem = word[: -len(suf)]
            if suf in after_vowel and stem[-1] not in _VOWELS:
                continue
            if stem not in out:
                out.add(stem)
                _strip(stem, suffixes, depth - 1, min_len, out, after_vowel)


# Spoken Bengali makes the present continuous with -তেছে/-তাছে/-তেসে (করতেছে, চলতাছে, হইতেছে,
# পারতেছি, করতাছেন) where the rules are written in the standard -ছে/-চ্ছে (করছে, চলছে, হচ্ছে, পারছি).
_BN_CONTINUOUS = re.compile("(\u09a4[\u09c7\u09be](?:\u099b|\u09b8)([\u09c7\u09bf]|\u09c7\u09a8))$")  # তে/তা + ছ/স + ে/ি/েন


def bn_standard(word: str) -> str | None:
    """The standard form of a colloquial continuous verb (করতেছে -> করছে, হইতেছে -> হচ্ছে), else None."""
    m = _BN_CONTINUOUS.search(word)
    if not m or m.start() < 1:
        return None
    stem, end = word[: m.start()], m.group(2)
    if stem.endswith("ই") and len(stem) > 1:  # হই, যাই, পাই: হচ্ছে, যাচ্ছে, পাচ্ছি
        return stem[:-1] + "চ্ছ" + end
    if stem[-1] in _VOWELS:  # দি, নি: দিচ্ছে, নিচ্ছে
        return stem + "চ্ছ" + end
    return stem + "ছ" + end  # কর, চল, পার: করছে, চলছে, পারছি


# Two older or regional ways of writing the same verbs. Formal letters from older senders are often in
# sadhu bhasha, the literary register: করিতেছে, করিবে, করিতে, করিলে, করিয়াছে, করিয়া, করিল for the
# standard করছে, করবে, করতে, করলে, করেছে, করে, করল; হইবে, হইতে, হইয়াছে for হবে, হতে, হয়েছে. Spoken
# Bengali of Netrokona and the haor writes the perfect with -ইছে (হইছে = হয়েছে, পাঠাইছিলাম =
# পাঠিয়েছিলাম) and the first-person future with -মু (যামু = যাব). A word in these forms also gets the
# standard form, so rules are written once, in standard Bengali. Each pattern gives extra forms only:
# a noun that merely ends the same way (গরিব, মিয়া) gets a form no rule uses.
_C = "[\u0995-\u09b9\u09bc\u09cd\u09ce]"  # a consonant, its nukta or hasanta (ড় য় are sequences here)
_PERFECT_ENDS = "(ে|ি|েন|িল|িলাম|িলেন|িলে|িলো)"


def _bn_literal(text: str) -> str:
    """A Bengali pattern or word in the text's normal form (NFC, nukta as a sequence), punctuation kept."""
    return unicodedata.normalize("NFC", text).replace("\u09df", "\u09af\u09bc").replace("\u09dc", "\u09a1\u09bc")


_BN_REGISTER: tuple[tuple[re.Pattern, tuple[str, ...]], ...] = tuple(
    (re.compile(_bn_literal(pattern)), tuple(_bn_literal(r) for r in replacements))
    for pattern, replacements in (
        # sadhu continuous: করিতেছে -> করছে (দিতেছে, হইতেছে: bn_standard)
        (f"^(.+{_C})িতে(ছ[েি]|ছেন|ছিল|ছিলাম|ছিলেন)$", ("\\1\\2",)),
        # sadhu perfect: করিয়াছে -> করেছে, দিয়াছে -> দিয়েছে; জানাইয়াছি -> জানিয়েছি, হইয়াছে -> হয়েছে
        (f"^(.+{_C})িয়াছ{_PERFECT_ENDS}$", ("\\1েছ\\2", "\\1িয়েছ\\2")),
        (f"^(.+)াইয়াছ{_PERFECT_ENDS}$", ("\\1িয়েছ\\2",)),
        (f"^(.+)ইয়াছ{_PERFECT_ENDS}$", ("\\1য়েছ\\2",)),
        # spoken perfect: পাঠাইছিলাম -> পাঠিয়েছিলাম, হইছে -> হয়েছে, দিছে -> দিয়েছে
        (f"^(.+)াইছ{_PERFECT_ENDS}$", ("\\1িয়েছ\\2",)),
        (f"^(.+)ইছ{_PERFECT_ENDS}$", ("\\1য়েছ\\2",)),
        (f"^({_C})িছ{_PERFECT_ENDS}$", ("\\1িয়েছ\\2",)),
        # conjunctive: করিয়া -> করে, দিয়া -> দিয়ে, জানাইয়া -> জানিয়ে, হইয়া -> হয়ে
        (f"^(.+{_C})িয়া$", ("\\1ে",)),
        (f"^({_C})িয়া$", ("\\1িয়ে",)),
        ("^(.+)াইয়া$", ("\\1িয়ে",)),
        ("^(.+)ইয়া$", ("\\1য়ে",)),
        # future: করিবে -> করবে, হইবে -> হবে, করিব/করিবো -> করব, spoken হইবো -> হবে, যামু -> যাব
        (f"^(.+{_C})িবে(ন)?$", ("\\1বে\\2",)),
        ("^(.+)ইবে(ন)?$", ("\\1বে\\2",)),
        (f"^(.+{_C})িব(ো)?$", ("\\1ব",)),
        ("^(.+)ইব(ো)?$", ("\\1ব", "\\1বে")),
        ("^(.+[^\u09ae])মু$", ("\\1ব",)),
        # infinitive and conditional: করিতে -> করতে, হইতে -> হতে, করিলে -> করলে, জানাইলে -> জানালে
        (f"^(.+{_C})িতে$", ("\\1তে",)),
        ("^(.+)ইতে$", ("\\1তে",)),
        (f"^(.+{_C})িলে(ন)?$", ("\\1লে\\2",)),
        ("^(.+)ইলে(ন)?$", ("\\1লে\\2",)),
        # past: করিল/করিলাম -> করল/করলাম, হইল/হইলো -> হল/হলো
        (f"^(.+{_C})িল(াম|েন|ো)?$", ("\\1ল\\2",)),
        ("^(.+)ইল(াম|েন|ো)?$", ("\\1ল\\2",)),
    )
)
# Spoken words of the region that differ by more than an ending: আমরার (our), আপনাগো (your), কইলো
# (said), হুনলাম (heard), আইছে (came), থাইকা (from); and the sadhu লওয়া (to take: লইলে = নিলে). A closed
# list, folded like the text.
_BN_REGIONAL_WORDS = {
    "আমরার": "আমাদের", "আমগো": "আমাদের", "আমাগো": "আমাদের", "আপনাগো": "আপনাদের", "আপনেগো": "আপনাদের",
    "আপনারার": "আপনাদের", "আপনেরার": "আপনাদের", "তারার": "তাদের", "হেরার": "তাদের", "আমারে": "আমাকে",
    "কইলো": "বললো", "কইল": "বলল", "কইলেন": "বললেন", "কইছে": "বলেছে", "কইছেন": "বলেছেন", "কইছি": "বলেছি",
    "কয়": "বলে", "কইতে": "বলতে", "কইবেন": "বলবেন", "কইয়া": "বলে", "হুনলাম": "শুনলাম", "হুনছি": "শুনেছি",
    "হুনছে": "শুনেছে", "আইছে": "এসেছে", "আইছেন": "এসেছেন", "আইসা": "এসে", "আইলে": "এলে", "থাইকা": "থেকে",
    "থিকা": "থেকে", "কইরা": "করে", "দেইখা": "দেখে", "ভাইঙ্গা": "ভেঙে", "এহন": "এখন", "কুনো": "কোনো",
    "পাইছি": "পেয়েছি", "পাইছে": "পেয়েছে", "পাইয়া": "পেয়ে", "যাইয়া": "গিয়ে", "গেছিলাম": "গিয়েছিলাম",
    "পামু": "পাব", "করমু": "করব", "দিমু": "দিব", "নিমু": "নিব",
    "লইলে": "নিলে", "লইয়া": "নিয়ে", "লইতে": "নিতে", "লইব": "নেব", "লইবে": "নেবে",
    "আইতে": "আসতে", "আমু": "আসব", "আইবো": "আসব", "যাইতে": "যেতে", "কাইল": "কাল", "ফিরা": "ফিরে",
    "ধইরা": "ধরে", "মাইয়া": "মেয়ে", "মাইয়ারে": "মেয়েকে", "মাইয়াগো": "মেয়েদের", "পোলা": "ছেলে",
    "পোলাপান": "ছেলেমেয়ে", "হেরারে": "তাদেরকে", "কেউরে": "কাউকে", "শিখায়": "শেখায়", "সপ্তা": "সপ্তাহ",
}
_BN_REGIONAL = {fold_bn(normalize(a)): fold_bn(normalize(b)) for a, b in _BN_REGIONAL_WORDS.items()}
# The same verb ending is typed with and without its final vowel: করবো/করব, বললো/বলল, হতো/হত.
_BN_FINAL_O = ("বো", "লো", "তো")


def bn_register_forms(word: str) -> set[str]:
    """Standard forms of a folded word written in sadhu bhasha or the regional spoken form, and the
    same ending with or without its final -ো (করবো/করব); empty when there are none."""
    out: set[str] = set()
    regional = _BN_REGIONAL.get(word)
    if regional:
        out.add(regional)
    elif len(word) > 3:
        for pattern, replacements in _BN_REGISTER:
            m = pattern.match(word)
            if m:
                out.update(m.expand(r) for r in replacements)
    for w in [word, *out]:
        if len(w) > 2:
            if w.endswith(_BN_FINAL_O):
                out.add(w[:-1])
            elif w.endswith(tuple(e[0] for e in _BN_FINAL_O)) and w[-2] not in "্":
                out.add(w + "ো")
    out.discard(word)
    return out


# The verbs of a fault report come in two aspects that say the same thing before "না": হয় না / হচ্ছে
# না, নেয় না / নিচ্ছে না. A word in one aspect also stands for the other, so a rule written with either
# matches both. The list is closed: only verbs whose two forms differ by more than an ending.
_BN_ASPECT_PAIRS = (
    ("হয়", "হচ্ছে"), ("করে", "করছে"), ("চলে", "চলছে"), ("নেয়", "নিচ্ছে"), ("খোলে", "খুলছে"),
    ("আসে", "আসছে"), ("যায়", "যাচ্ছে"), ("দেখায়", "দেখাচ্ছে"), ("ধরে", "ধরছে"), ("টানে", "টানছে"),
    ("জ্বলে", "জ্বলছে"), ("পারি", "পারছি"), ("পায়", "পাচ্ছে"), ("দেয়", "দিচ্ছে"),
)
_BN_ASPECT = {fold_bn(normalize(a)): fold_bn(normalize(b)) for a, b in _BN_ASPECT_PAIRS}
_BN_ASPECT.update({b: a for a, b in list(_BN_ASPECT.items())})


def bn_stems(word: str, suffixes: tuple[str, ...] = DEFAULT_BN_SUFFIXES) -> frozenset[str]:
    """The folded word and every stem left after taking off up to three known suffixes; a colloquial
    continuous verb, a sadhu or regional verb form and a regional word also give their standard form."""
    folded = fold_bn(word)
    out = {folded}
    table = _suffix_table(tuple(suffixes))
    _strip(folded, table, 3, 2, out, _AFTER_VOWEL_ONLY_FOLDED)
    standard = bn_standard(folded)
    if standard:
        out.add(standard)
        _strip(standard, table, 3, 2, out, _AFTER_VOWEL_ONLY_FOLDED)
    for form in bn_register_forms(folded):
        out.add(form)
        _strip(form, table, 3, 2, out, _AFTER_VOWEL_ONLY_FOLDED)
    out.update(_BN_ASPECT[f] for f in list(out) if f in _BN_ASPECT)
    return frozenset(out)


# --- English -----------------------------------------------------------------------------------

# Banglish case endings typed onto English words: "labe", "nothite", "laptopgula", "officeke".
_EN_BANGLISH_TAILS = ("gulo", "gula", "guli", "te", "ta", "ti", "ke", "der", "e")


def en_stems(word: str) -> frozenset[str]:
    """A Latin word and its likely dictionary forms: plural, past, -ing, and Banglish case endings."""
    out = {word}
    n = len(word)
    if n > 3 and word.endswith("ies"):
        out.add(word[:-3] + "y")
    if n > 3 and word.endswith("es"):
        out.add(word[:-2])
    if n > 2 and word.endswith("s") and not word.endswith("ss"):
        out.add(word[:-1])
    if n > 4 and word.endswith("ed"):
        out.update((word[:-2], word[:-1]))
        if word[-3] == word[-4]:
            out.add(word[:-3])
    if n > 5 and word.endswith("ing"):
        out.update((word[:-3], word[:-3] + "e"))
        if word[-4] == word[-5]:
            out.add(word[:-4])
    for tail in _EN_BANGLISH_TAILS:
        if word.endswith(tail) and n - len(tail) >= 3:
            out.add(word[: -len(tail)])
    return frozenset(out)


# --- Banglish ----------------------------------------------------------------------------------

# Banglish has no fixed spelling: proshikkhon / proshikhon / prosikkhon, nai / nei, bhalo / valo.
# The phonetic key folds the usual variations so that they compare equal: sh = s, kkh = kh,
# v = bh, ph = f, z = j, the vowels a/o/u/e as one and i/y/ee as another, doubled letters once.
# Aspirated consonants stay distinct from plain ones (kh is not k, th is not t), because that is
# what separates khata (ledger) from kotha (talk). Aspirates become upper-case letters in the key.
_BL_CLUSTERS = (
    ("kkh", "K"), ("chh", "C"), ("ch", "C"), ("sh", "s"), ("kh", "K"), ("gh", "G"), ("bh", "B"),
    ("v", "B"), ("ph", "F"), ("f", "F"), ("th", "T"), ("dh", "D"), ("jh", "J"), ("rh", "r"),
    ("ck", "k"), ("q", "k"), ("x", "ks"), ("z", "j"), ("w", "o"), ("y", "i"), ("ee", "i"),
    ("oo", "u"),
)
_BL_VOWELS = str.maketrans({"a": "a", "o": "a", "u": "a", "e": "a", "i": "i"})
_RUNS = re.compile(r"(.)\1+")

# Case endings in key form: -e/-o, -er/-r, -te/-ta/-to, -ti, -gula/-gulo, -ke, -der, -ra.
_BL_TAILS = ("gala", "dar", "ar", "ta", "ti", "ka", "ra", "r", "a")


@lru_cache(maxsize=65536)
def banglish_key(word: str) -> str:
    """Phonetic key of a Latin word: sh=s, kkh=kh, bh=v, a/o/u/e one vowel, doubled letters once."""
    w = "".join(ch for ch in word.lower() if "a" <= ch <= "z")
    for a, b in _BL_CLUSTERS:
        if a in w:
            w = w.replace(a, b)
    w = w.translate(_BL_VOWELS)
    return _RUNS.sub(r"\1", w)  # after the vowel mapping, so "nei" -> "nai", "hoy" -> "hai"


# The same continuous verb typed in Latin letters: kortese/korteche -> korche, hoitese -> hocche,
# paitesi -> pacchi, diteche -> dicche.
_BL_CONTINUOUS = re.compile(r"t[ae](?:ch|ss?)([ei])$")


def banglish_standard(word: str) -> str | None:
    """The standard Banglish form of a colloquial continuous verb (kortese -> korche), else None."""
    m = _BL_CONTINUOUS.search(word)
    if not m or m.start() < 2:
        return None
    stem, end = word[: m.start()], m.group(1)
    if stem[-1] == "i" and stem[-2] in "aeou":  # hoi, jai, pai
        return stem[:-1] + "cch" + end
    if stem[-1] in "aeiou":  # di, ni
        return stem + "cch" + end
    return stem + "ch" + end


# The same two aspects typed in Latin letters (hoy na / hocche na, kore na / korche na), as keys.
_BL_ASPECT_PAIRS = (
    ("hoy", "hocche"), ("kore", "korche"), ("chole", "cholche"), ("ashe", "ashche"), ("jay", "jacche"),
    ("dekhay", "dekhacche"), ("dhore", "dhorche"), ("tane", "tanche"), ("jole", "jolche"), ("pari", "parchi"),
)  # not ney/nicche (the key of ney is that of nai), nor khole/khulche (that of khola, "open")
_BL_ASPECT: dict[str, str] = {}


def _bl_aspect() -> dict[str, str]:
    if not _BL_ASPECT:
        for a, b in _BL_ASPECT_PAIRS:
            ka, kb = banglish_key(a), banglish_key(b)
            _BL_ASPECT[ka], _BL_ASPECT[kb] = kb, ka
    return _BL_ASPECT


# Spoken Banglish writes the perfect and "ache" with s where the standard spelling has ch: korsi (korechi),
# gese (geche), hoise (hoyeche), dise (diyeche), ase (ache). In key form: a final s + vowel (+ n) also
# stands for ch + vowel and eche + vowel.
_BL_SPOKEN_PERFECT = re.compile(r"(?<=[a-zA-Z])(?<!s)s([ai]n?)$")


def _bl_spoken_perfect(key: str) -> tuple[str, ...]:
    m = _BL_SPOKEN_PERFECT.search(key)
    if not m or m.start() < 1:
        return ()
    head, end = key[: m.start()], m.group(1)
    return (head + "C" + end, _RUNS.sub(r"\1", head + "aC" + end))


@lru_cache(maxsize=65536)
def banglish_stems(word: str) -> frozenset[str]:
    """The key of a Latin word and the keys left after taking off up to two Banglish endings; a
    colloquial continuous verb and a spoken perfect (korsi, gese) also give the key of the standard form."""
    key = banglish_key(word)
    out = {key, *_bl_spoken_perfect(key)}
    _strip(key, _BL_TAILS, 2, 3, out)
    standard = banglish_standard(word)
    if standard:
        skey = banglish_key(standard)
        out.add(skey)
        _strip(skey, _BL_TAILS, 2, 3, out)
    aspect = _bl_aspect()
    out.update(aspect[k] for k in list(out) if k in aspect)
    return frozenset(out)
