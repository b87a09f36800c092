"""Officer replies as mail clients send them: only the officer's new words may reach the citizen.

The labelled fixtures (tests/data/replies, copied from the corpus) are compared with whitespace
collapsed, as the corpus README says; the unit cases below pin one client form each.
"""

import email
import json
from email import policy
from pathlib import Path

import pytest

from maildesk.ingest.replies import split_reply, strip_reply, unflow
from maildesk.rules.commands import parse_commands

DATA = Path(__file__).resolve().parents[1] / "data" / "replies"
TEXT_FIXTURES = [json.loads(line) for line in (DATA / "replies-dev.jsonl").read_text("utf-8").splitlines() if line]
HTML_DIR = DATA / "replies-html-dev"
HTML_EXPECTED = {
    row["id"]: row
    for row in (json.loads(line) for line in (HTML_DIR / "expected.jsonl").read_text("utf-8").splitlines() if line)
}

NOTICE = [
    "নতুন অনুরোধ: MD-2026-00084",
    "প্রেরক: UNO Khaliajuri <uno.khaliajuri@upazila.example.gov.bd>",
    "",
    "এই ইমেইলে Reply করে উত্তর দিন। আলাদা লাইনে কমান্ড লেখা যাবে: #resolve,",
    "#close, #status <অবস্থা>, #service <কোড>, #due <দিন>, #assign <ইমেইল>",
    "-- ",
    "Maildesk, তথ্য ও যোগাযোগ প্রযুক্তি অধিদপ্তর, উপজেলা কার্যালয়, খালিয়াজুরী",
]
QUOTED = "\n".join(("> " + line).rstrip() for line in NOTICE)
UNPREFIXED = "\n".join(NOTICE)
ANSWER = "The router was replaced this morning."


def collapse(text: str) -> str:
    return " ".join(text.split())


def reply_and_commands(text, html=None, flowed=False):
    commands, remaining = parse_commands(strip_reply(text, html, flowed=flowed))
    return remaining, [c.raw_line for c in commands]


def eml_parts(path: Path):
    msg = email.message_from_binary_file(path.open("rb"), policy=policy.default)
    plain, html = msg.get_body(("plain",)), msg.get_body(("html",))
    flowed = plain is not None and plain.get_param("format") == "flowed"
    return (plain.get_content() if plain else None), (html.get_content() if html else None), flowed


# --- the labelled fixtures -----------------------------------------------------------------------


def test_fixtures_are_all_there():
    assert len(TEXT_FIXTURES) == 20
    assert sorted(p.stem for p in HTML_DIR.glob("*.eml")) == sorted(HTML_EXPECTED) and len(HTML_EXPECTED) == 8


@pytest.mark.parametrize("case", TEXT_FIXTURES, ids=[c["id"] for c in TEXT_FIXTURES])
def test_text_fixture(case):
    remaining, commands = reply_and_commands(case["raw_body"])
    assert collapse(remaining) == collapse(case["expected_reply"])
    assert commands == case["expected_commands"]


@pytest.mark.parametrize("name", sorted(HTML_EXPECTED))
def test_html_fixture_uses_html_part(name):
    text, html, flowed = eml_parts(HTML_DIR / f"{name}.eml")
    assert html, "each fixture has an HTML part"
    remaining, commands = reply_and_commands(text, html, flowed)
    assert collapse(remaining) == collapse(HTML_EXPECTED[name]["expected_reply"])
    assert commands == HTML_EXPECTED[name]["expected_commands"]


@pytest.mark.parametrize("name", sorted(HTML_EXPECTED))
def test_html_fixture_text_part_alone_gives_the_same(name):
    text, _, flowed = eml_parts(HTML_DIR / f"{name}.eml")
    remaining, commands = reply_and_commands(text, None, flowed)
    assert collapse(remaining) == collapse(HTML_EXPECTED[name]["expected_reply"])
    assert commands == HTML_EXPECTED[name]["expected_commands"]


@pytest.mark.parametrize("name", sorted(HTML_EXPECTED))
def test_html_fixture_html_part_alone_gives_the_same(name):
    _, html, _ = eml_parts(HTML_DIR / f"{name}.eml")
    remaining, commands = reply_and_commands(None, html)
    assert collapse(remaining) == collapse(HTML_EXPECTED[name]["expected_reply"])
    assert commands == HTML_EXPECTED[name]["expected_commands"]


def test_outlook_desktop_text_keeps_its_hard_wraps():
    text, _, _ = eml_parts(HTML_DIR / "r2-04.eml")
    reply, _ = reply_and_commands(text)
    assert reply == HTML_EXPECTED["r2-04"]["expected_reply"]


# --- Gmail --------------------------------------------------------------------------------------


def test_gmail_us_attribution():
    body = f"{ANSWER}\n\nOn Sun, Nov 29, 2026 at 9:40 AM Maildesk <desk@upazila.example.gov.bd> wrote:\n\n{QUOTED}\n"
    assert strip_reply(body) == ANSWER


def test_gmail_attribution_wrapped_after_angle_bracket():
    body = f"{ANSWER}\n\nOn Sun, Nov 29, 2026 at 9:40 AM Maildesk, Khaliajuri <\ndesk@upazila.example.gov.bd> wrote:\n\n{QUOTED}"
    assert strip_reply(body) == ANSWER


def test_gmail_uk_attribution():
    body = f"{ANSWER}\n\nOn Fri, 27 Nov 2026 at 10:15, Maildesk <desk@upazila.example.gov.bd> wrote:\n\n{QUOTED}"
    assert strip_reply(body) == ANSWER


def test_gmail_bengali_attribution_wrapped():
    body = (
        "রাউটার বদলে দেওয়া হয়েছে।\n\n"
        "রবি, ২৯ নভে, ২০২৬ তারিখে ৯:৪০ AM টায় তারিখে Maildesk <\n"
        f"desk@upazila.example.gov.bd> লিখেছেন:\n\n{QUOTED}"
    )
    assert strip_reply(body) == "রাউটার বদলে দেওয়া হয়েছে।"


def test_bengali_sentence_ending_in_likhechhen_is_not_an_attribution():
    body = "ইউএনও মহোদয় লিখেছেন:\nসভা বৃহস্পতিবার হবে।"
    assert strip_reply(body) == body


def test_gmail_android_attribution():
    body = f"{ANSWER}\n\nOn Wed, 14 Oct 2026, 10:05 Maildesk, <desk@upazila.example.gov.bd> wrote:\n\n{QUOTED}"
    assert strip_reply(body) == ANSWER


def test_gmail_html_quote_and_signature_removed():
    html = (
        f'<div dir="ltr">{ANSWER}<div><br></div><div>#resolve</div>'
        '<div><br></div><div class="gmail_signature">AP Khaliajuri<br>DoICT</div></div>'
        '<br><div class="gmail_quote"><div class="gmail_attr">On Sun, Nov 29, 2026 Maildesk wrote:<br></div>'
        '<blockquote class="gmail_quote">নতুন অনুরোধ<br>#close, #status</blockquote></div>'
    )
    parts = split_reply(None, html)
    assert parts.reply_text == f"{ANSWER}\n\n#resolve"
    assert "#close" in parts.quoted_text
    assert "AP Khaliajuri" in parts.signature


# --- Outlook ------------------------------------------------------------------------------------


def test_outlook_desktop_header_block_unprefixed_quote():
    body = (
        f"{ANSWER}\n#resolve\n\n"
        "From: Maildesk <desk@upazila.example.gov.bd>\nSent: Monday, March 16, 2026 9:50 AM\n"
        "To: AP Khaliajuri <ap.khaliajuri@upazila.example.gov.bd>\nSubject: [MD-2026-00034] নতুন অনুরোধ\n\n"
        f"{UNPREFIXED}"
    )
    remaining, commands = reply_and_commands(body)
    assert (remaining, commands) == (ANSWER, ["#resolve"])


def test_outlook_original_message_separator():
    body = f"{ANSWER}\n\n-----Original Message-----\nFrom: Maildesk <desk@x.example>\nSent: Monday\n\n{UNPREFIXED}"
    assert strip_reply(body) == ANSWER


def test_outlook_web_underscores_and_get_outlook_for_android():
    body = (
        f"{ANSWER}\n\nGet Outlook for Android<https://aka.ms/AAb9ysg>\n________________________________\n"
        f"From: Maildesk <desk@x.example>\nSent: Monday, February 16, 2026 12:04:03 PM\nTo: AP\n\n{UNPREFIXED}"
    )
    parts = split_reply(body)
    assert parts.reply_text == ANSWER
    assert parts.signature.startswith("Get Outlook for Android")
    assert "#close" in parts.quoted_text


def test_outlook_html_separators_cut_the_rest():
    for marker in (
        '<div id="appendonsend"></div><hr>',
        '<div id="divRplyFwdMsg" dir="ltr">',
        '<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0in 0in 0in">',
    ):
        html = f"<div>{ANSWER}</div>{marker}<b>From:</b> Maildesk<br><div>{UNPREFIXED}</div>"
        assert strip_reply(None, html) == ANSWER, marker


def test_outlook_word_paragraphs_and_sign_off():
    html = (
        '<div class="WordSection1"><p class="MsoNormal">প্রথম লাইন।<o:p></o:p></p>'
        '<p class="MsoNormal"><o:p>&nbsp;</o:p></p><p class="MsoNormal">#resolve<o:p></o:p></p>'
        '<p class="MsoNormal">ধন্যবাদান্তে<o:p></o:p></p><p class="MsoNormal">সহকারী প্রোগ্রামার<o:p></o:p></p>'
        '<div style="border:none;border-top:solid #E1E1E1 1.0pt"><p>From: x</p></div></div>'
    )
    assert reply_and_commands(None, html) == ("প্রথম লাইন।", ["#resolve"])


# --- Thunderbird --------------------------------------------------------------------------------


def test_thunderbird_us_attribution_top_posted():
    body = f"{ANSWER}\n\nOn 11/29/26 9:40 AM, Maildesk wrote:\n{QUOTED}"
    assert strip_reply(body) == ANSWER


def test_thunderbird_format_flowed_soft_breaks_join():
    body = "The router was replaced \nthis morning.\n\nOn 29/11/2026 09:40, Maildesk wrote:\n> নতুন অনুরোধ: \n> MD-2026-00084\n"
    assert strip_reply(body, flowed=True) == ANSWER
    assert strip_reply(body) == "The router was replaced\nthis morning."


def test_unflow_keeps_signature_separator_and_quote_depth():
    flowed = "one \ntwo\n-- \nName\n> q1 \n> q2\n>> deeper"
    assert unflow(flowed) == "one two\n-- \nName\n> q1 q2\n>> deeper"


def test_thunderbird_bottom_posted():
    body = f"On 29/11/2026 09:40, Maildesk wrote:\n{QUOTED}\n\n{ANSWER}\n\n#resolve\n\n-- \nAP, DoICT"
    assert reply_and_commands(body) == (ANSWER, ["#resolve"])


def test_inline_answers_are_joined_with_one_blank_line():
    body = (
        "On 29/11/2026 09:40, Maildesk wrote:\n> প্রথম প্রশ্ন?\n\nFirst answer.\n\n"
        "> দ্বিতীয় প্রশ্ন?\nSecond answer,\non two lines.\n> শেষ লাইন\n\n#due 3\n"
    )
    assert strip_reply(body) == "First answer.\n\nSecond answer,\non two lines.\n\n#due 3"


def test_thunderbird_html_cite_prefix_signature_and_inline_answer():
    html = (
        "<p>Answer one.</p><pre class=\"moz-signature\" cols=\"72\">-- \nAP</pre>"
        '<div class="moz-cite-prefix">On 29/11/2026 09:40, Maildesk wrote:<br></div>'
        '<blockquote type="cite">first question</blockquote>Answer two.'
        '<blockquote type="cite">#close, #status</blockquote>'
    )
    parts = split_reply(None, html)
    assert parts.reply_text == "Answer one.\n\nAnswer two."
    assert "#close" in parts.quoted_text and "first question" in parts.quoted_text
    assert "AP" in parts.signature


# --- Apple Mail / iPhone ------------------------------------------------------------------------


def test_iphone_sent_from_and_quoted_attribution():
    body = (
        f"{ANSWER}\n#due ৫\n\nSent from my iPhone\n\n"
        f"> On 29 Nov 2026, at 09:40, Maildesk <desk@upazila.example.gov.bd> wrote:\n> \n{QUOTED}"
    )
    assert reply_and_commands(body) == (ANSWER, ["#due ৫"])


def test_apple_html_blockquote_type_cite():
    html = (
        f'<div dir="ltr">{ANSWER}</div><div dir="ltr"><br></div><div dir="ltr">Sent from my iPhone</div>'
        '<div dir="ltr"><br><blockquote type="cite">On 29 Nov 2026, at 09:40, Maildesk wrote:<br></blockquote></div>'
        '<blockquote type="cite"><div dir="ltr">#resolve, #close</div></blockquote>'
    )
    assert strip_reply(None, html) == ANSWER


def test_iphone_bengali_locale_footer():
    assert strip_reply(f"{ANSWER}\n\nআমার iPhone থেকে পাঠানো\n\n{QUOTED}") == ANSWER


# --- Yahoo and Samsung --------------------------------------------------------------------------


def test_yahoo_web_indented_attribution_unprefixed_quote():
    body = (
        f"{ANSWER}\n\n    On Wednesday, February 18, 2026 at 12:47:23 PM GMT+6, Maildesk "
        "<desk@upazila.example.gov.bd> wrote:  \n \n " + UNPREFIXED.replace("\n", "\n ")
    )
    assert strip_reply(body) == ANSWER


def test_yahoo_android_first_quoted_line_on_attribution_line():
    body = (
        f"{ANSWER}\n\nSent from Yahoo Mail on Android \n \n"
        "  On Tue, Jun 9, 2026 at 2:10 PM, Maildesk<desk@upazila.example.gov.bd> wrote:   "
        f"{UNPREFIXED}"
    )
    parts = split_reply(body)
    assert parts.reply_text == ANSWER
    assert parts.signature == "Sent from Yahoo Mail on Android"
    assert "#close" in parts.quoted_text


def test_yahoo_html_quoted_div():
    html = (
        f'<div class="ydp1yahoo-style-wrap"><div>#status scheduled</div><div><br></div><div>{ANSWER}</div></div>'
        '<div id="yahoo_quoted_123" class="yahoo_quoted"><div>On Wednesday, Maildesk wrote:</div>'
        "<div>#resolve, #close</div></div>"
    )
    assert reply_and_commands(None, html) == (ANSWER, ["#status scheduled"])


def test_samsung_sent_from_galaxy_and_original_message():
    body = (
        f"{ANSWER}\n\n\nSent from my Galaxy\n\n\n-------- Original message --------\n"
        f"From: Maildesk <desk@x.example> \nDate: 29/11/2026 09:40 (GMT+06:00) \nTo: AP \n\n{UNPREFIXED}"
    )
    parts = split_reply(body)
    assert parts.reply_text == ANSWER
    assert parts.signature == "Sent from my Galaxy"


# --- signatures and sign-offs -------------------------------------------------------------------


@pytest.mark.parametrize(
    "closing", ["Regards,", "Best regards,", "Thanks,", "Thank you", "ধন্যবাদান্তে", "শুভেচ্ছান্তে,"]
)
def test_sign_off_with_name_lines_is_removed(closing):
    body = f"{ANSWER}\n\n{closing}\nMd. Tarek Hasan\nAssistant Programmer, DoICT\n০১৭০০-০০০২০০"
    parts = split_reply(body)
    assert parts.reply_text == ANSWER
    assert parts.signature.startswith(closing)


def test_closing_word_followed_by_a_sentence_is_kept():
    body = f"Thanks,\nI checked the line and it works again.\n\nRegards,\nAP"
    assert strip_reply(body) == "Thanks,\nI checked the line and it works again."


def test_closing_line_as_the_whole_reply_is_kept():
    assert strip_reply("ধন্যবাদ") == "ধন্যবাদ"


def test_command_typed_after_the_sign_off_survives():
    body = f"{ANSWER}\n\nRegards,\nAP Khaliajuri\n#resolve"
    assert reply_and_commands(body) == (ANSWER, ["#resolve"])


def test_dash_dash_signature_removed():
    parts = split_reply(f"{ANSWER}\n\n-- \nAP Khaliajuri\nDoICT")
    assert parts.reply_text == ANSWER
    assert parts.signature == "--\nAP Khaliajuri\nDoICT"


def test_sent_from_in_a_sentence_is_text():
    body = "Sent from the district office yesterday, the letter should arrive today."
    assert strip_reply(body) == body


# --- edges --------------------------------------------------------------------------------------


def test_empty_and_none():
    assert strip_reply(None) == ""
    assert strip_reply("") == ""
    assert strip_reply(None, "") == ""
    assert split_reply(None) == split_reply("")


def test_no_quote_at_all_is_kept_whole_with_blank_runs_collapsed():
    assert strip_reply("Line one.\n\n\n\nLine two.\r\n") == "Line one.\n\nLine two."


def test_quoted_help_line_never_yields_commands():
    body = f"Looking into it.\n\nOn Sun, Nov 29, 2026 at 9:40 AM Maildesk <desk@x.example> wrote:\n\n{QUOTED}"
    assert reply_and_commands(body) == ("Looking into it.", [])


def test_html_without_officer_text_falls_back_to_text_part():
    html = '<blockquote type="cite">everything quoted by an unknown client</blockquote>'
    assert strip_reply(f"{ANSWER}\n\n{QUOTED}", html) == ANSWER


def test_broken_html_does_not_raise():
    assert strip_reply(None, f"<div>{ANSWER}<blockquote type=cite>unclosed quote <b>") == ANSWER


def test_bengali_entry_is_registered_in_mail_parser_reply():
    from mailparser_reply import EmailReplyParser

    body = (
        "রাউটার বদলে দেওয়া হয়েছে।\n\nধন্যবাদান্তে\nসহকারী প্রোগ্রামার\n\n"
        f"রবি, ২৯ নভে, ২০২৬ তারিখে ৯:৪০ AM টায় তারিখে Maildesk <desk@x.example> লিখেছেন:\n\n{QUOTED}"
    )
    first = EmailReplyParser(languages=["bn"]).read(body).replies[0]
    assert first.body == "রাউটার বদলে দেওয়া হয়েছে।"
    assert first.signatures.startswith("ধন্যবাদান্তে")
