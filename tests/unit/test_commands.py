"""Officer commands as officers type them (English or Bengali, any case, Bengali digits), and ticket refs."""

from datetime import date

import pytest
from hypothesis import given, strategies as st

from maildesk.outbound.bengali import bn_digits
from maildesk.rules.commands import Command, parse_commands, parse_line
from maildesk.rules.refs import find_ticket_ref


def one(line: str, **kw) -> Command:
    commands, remaining = parse_commands(line, **kw)
    assert len(commands) == 1 and remaining == ""
    return commands[0]


@pytest.mark.parametrize(
    "line, verb",
    [
        ("#resolve", "resolve"),
        ("#RESOLVE", "resolve"),
        ("#Resolved", "resolve"),
        ("#সমাধান", "resolve"),
        ("#close", "close"),
        ("#বন্ধ", "close"),
        ("#reopen", "reopen"),
        ("#পুনরায়-খুলুন", "reopen"),
        ("#পুনরায় খুলুন", "reopen"),
    ],
)
def test_verbs_without_arguments(line, verb):
    command = one(line)
    assert (command.verb, command.args, command.raw_line, command.error) == (verb, None, line, None)


def test_comment_after_a_verb_is_kept_as_args():
    assert one("#close duplicate of MD-2026-00012").args == "duplicate of MD-2026-00012"


def test_precomposed_nukta_letters_match_the_alias():
    # Mobile keyboards type U+09DF (য়) where the aliases are written য + nukta.
    assert one("#পুনরা\u09df-খুলুন").verb == "reopen"
    assert one("#দা\u09dfিত্ব ap@upazila.example.gov.bd").verb == "assign"


@pytest.mark.parametrize(
    "line, state",
    [
        ("#status waiting", "waiting"),
        ("#status Scheduled", "scheduled"),
        ("#status open", "open"),
        ("#status in-progress", "open"),
        ("#status on-hold", "waiting"),
        ("#status on hold", "waiting"),
        ("#status: waiting", "waiting"),
        ("#অবস্থা অপেক্ষা", "waiting"),
        ("#অবস্থা নির্ধারিত", "scheduled"),
        ("#অবস্থা খোলা", "open"),
        ("#status waiting for the headmaster", "waiting"),
        ("#status সিএ-র অনুমোদনের অপেক্ষায়", "waiting"),
        ("#status open or waiting", "open"),
    ],
)
def test_status(line, state):
    command = one(line)
    assert (command.verb, command.args, command.error) == ("status", state, None)


@pytest.mark.parametrize("line", ["#status", "#status done-ish", "#status not sure: open or waiting"])
def test_status_invalid_is_reported_in_both_languages(line):
    command = one(line)
    assert command.verb == "status" and command.args is None
    assert "open, waiting, scheduled" in command.error and "অপেক্ষা" in command.error


@pytest.mark.parametrize("line", ["#service 2.2.7", "#সেবা ২.২.৭", "#Service ২.2.৭"])
def test_service_code_in_either_digits(line):
    command = one(line)
    assert (command.verb, command.args, command.error) == ("service", "2.2.7", None)


@pytest.mark.parametrize("line", ["#service", "#service training", "#service 2.2"])
def test_service_invalid(line):
    command = one(line)
    assert command.args is None and "2.2.7" in command.error and "২.২.৭" in command.error


def test_service_checked_against_the_charter_when_given():
    codes = {"2.1.1", "2.2.7"}
    assert one("#service 2.2.7", services=codes).error is None
    command = one("#সেবা ৯.৯.৯", services=codes)
    assert command.args is None and "9.9.9" in command.error and "৯.৯.৯" in command.error


@pytest.mark.parametrize(
    "line, args",
    [
        ("#due 5", ("days", 5)),
        ("#due ১৫", ("days", 15)),
        ("#due ২", ("days", 2)),
        ("#due 5 working days", ("days", 5)),
        ("#সময়সীমা ৭ কার্যদিবস", ("days", 7)),
        ("#due 2026-12-20", ("date", date(2026, 12, 20))),
        ("#due ২০২৬-১২-২০", ("date", date(2026, 12, 20))),
        ("#due 20/12/2026", ("date", date(2026, 12, 20))),
        ("#due:3", ("days", 3)),
    ],
)
def test_due(line, args):
    command = one(line)
    assert (command.verb, command.args, command.error) == ("due", args, None)


@given(st.integers(min_value=1, max_value=365), st.booleans())
def test_due_days_any_digits(days, bengali):
    written = bn_digits(days) if bengali else str(days)
    assert one(f"#due {written}").args == ("days", days)


@pytest.mark.parametrize("line", ["#due", "#due 0", "#due 400", "#due soon", "#due -3"])
def test_due_invalid(line):
    command = one(line)
    assert command.verb == "due" and command.args is None
    assert "working days" in command.error and "কার্যদিবস" in command.error


def test_due_impossible_date():
    command = one("#due 2026-02-30")
    assert command.args is None and "2026-02-30" in command.error and "২০২৬-০২-৩০" in command.error


@pytest.mark.parametrize(
    "line",
    [
        "#assign Tech.Khaliajuri@upazila.example.gov.bd",
        "#দায়িত্ব tech.khaliajuri@upazila.example.gov.bd",
        "#assign <tech.khaliajuri@upazila.example.gov.bd>",
        "#assign mailto:tech.khaliajuri@upazila.example.gov.bd",
    ],
)
def test_assign(line):
    command = one(line)
    assert (command.verb, command.args, command.error) == ("assign", "tech.khaliajuri@upazila.example.gov.bd", None)


@pytest.mark.parametrize("line", ["#assign", "#assign the technician", "#assign a@x.example, b@x.example"])
def test_assign_invalid(line):
    command = one(line)
    assert command.args is None and "e-mail" in command.error and "ইমেইল" in command.error


def test_note_is_a_command_and_never_left_in_the_relayed_text():
    commands, remaining = parse_commands("Visiting tomorrow.\n#নোট ইউএনও স্যারকে ফোনে জানানো হয়েছে\n")
    assert remaining == "Visiting tomorrow."
    assert (commands[0].verb, commands[0].args) == ("note", "ইউএনও স্যারকে ফোনে জানানো হয়েছে")
    assert one("#note").error is not None


@pytest.mark.parametrize("line, word", [("#foo", "foo"), ("#resolv", "resolv"), ("#statuses open", "statuses")])
def test_unknown_command(line, word):
    command = one(line)
    assert (command.verb, command.args, command.error) == ("unknown", None, f"unknown command #{word}")


@pytest.mark.parametrize(
    "line",
    [
        "টিকিট #MD-2026-00084 এর বিষয়ে: তালিকা পাঠালাম।",
        "#MD-2026-00084 এর বিষয়ে আপডেট",
        "#MD-2026-00084",
        "#1 priority is the lab in Chakua.",
        "# resolve",
        "#DigitalBangladesh is the theme of this year's fair, so please bring the banner.",
        "Call me at #4321.",
        "#",
    ],
)
def test_hash_in_ordinary_text_is_not_a_command(line):
    assert parse_line(line) is None
    assert parse_commands(line) == ([], line)


def test_remaining_text_collapses_blank_runs_and_keeps_order_of_commands():
    text = "Dear Sir,\n\n#status in-progress\n\nWe will visit on Tuesday.\n\n#due 15\n\n"
    commands, remaining = parse_commands(text)
    assert remaining == "Dear Sir,\n\nWe will visit on Tuesday."
    assert [c.raw_line for c in commands] == ["#status in-progress", "#due 15"]
    assert [c.verb for c in commands] == ["status", "due"]


def test_indented_command_line_and_crlf():
    commands, remaining = parse_commands("Done.\r\n   #resolve  \r\n")
    assert [c.raw_line for c in commands] == ["#resolve"] and remaining == "Done."


def test_command_only_reply_leaves_nothing():
    assert parse_commands("#resolve\n") == ([Command("resolve", None, "#resolve")], "")


def test_empty_text():
    assert parse_commands("") == ([], "")


# --- ticket references --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "subject, text, ref",
    [
        ("Re: [ICT-2026-00042] নতুন অনুরোধ: প্রিন্টার", "", "ICT-2026-00042"),
        ("RE: [MD-2026-00084] Fwd: MD-2026-00001", "", "MD-2026-00084"),
        ("about MD-2026-00084 please", "", "MD-2026-00084"),
        ("Re: printer", "টিকিট #MD-2026-00084 এর বিষয়ে", "MD-2026-00084"),
        ("Re: [MD-২০২৬-০০০৮৪]", "", "MD-2026-00084"),
        ("re: [md-2026-00084]", "", "MD-2026-00084"),
        ("Re: [MD-2026-123456]", "", "MD-2026-123456"),
    ],
)
def test_find_ticket_ref(subject, text, ref):
    assert find_ticket_ref(subject, text) == ref


@pytest.mark.parametrize(
    "subject",
    ["Re: printer", "X-2026-00042", "TOOLONGPREFIX-2026-00042", "MD-2026-0042", "MD-26-00042", "AMD-2026-000421X"],
)
def test_no_ticket_ref(subject):
    assert find_ticket_ref(subject) is None


def test_subject_wins_over_text():
    assert find_ticket_ref("[ICT-2026-00001]", "see [ICT-2026-00002]") == "ICT-2026-00001"
