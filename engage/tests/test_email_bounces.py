"""Bounces and complaints read from a VERP bounce mailbox (a maildir and an mbox on disk), end to end:
the email is sent through engage to the local SMTP sink, the report lands in the mailbox, the poll
records it on the message and revokes the contact's email consent."""

from __future__ import annotations

import email
import email.policy
import mailbox
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from django.core.management import call_command

from channels_app.bounces import bounce_parse, email_bounces_poll
from channels_app.models import EmailDelivery
from channels_app.tests.conftest import account_create
from crm.models import Channel, Contact, Event
from crm.tests.factories import ContactFactory
from engage.messaging.services import message_send
from engage.models import Message

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(company, smtp_server, settings):
    settings.EMAIL_BOUNCE_ADDRESS = "bounces@mail.alpha.test"
    account_create(company=company, channel=Channel.EMAIL,
                   settings={"host": "127.0.0.1", "port": smtp_server.port, "from_email": "Alpha <hello@alpha.test>"})
    contact = ContactFactory(company=company, name="Rahim", email="gone@example.net", is_email_consented=True)
    message = message_send(
        job=None, company=company, contact=contact, lead=None, channel=Channel.EMAIL, body="আবার বুক করুন",
        agent_type="smartengage", message_type="reminder", subject="রিমাইন্ডার",
    )
    delivery = EmailDelivery.objects.get()
    return {"message": message, "contact": contact, "delivery": delivery, "original": smtp_server.messages[0]}


class RawReport:
    """A multipart/report written out as bytes, as a receiving server sends it."""

    def __init__(self, raw: str):
        self.raw = raw

    def as_bytes(self) -> bytes:
        return self.raw.replace("\n", "\r\n").encode()


def _report(*, report_type: str, to: str, subject: str, human: str, machine_type: str, machine: str, original):
    headers = "".join(f"{name}: {value}\n" for name, value in original.items())
    return RawReport(
        "From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\n"
        f"To: {to}\nSubject: {subject}\nMessage-ID: {make_msgid(domain='mx.example.net')}\nMIME-Version: 1.0\n"
        f'Content-Type: multipart/report; report-type={report_type}; boundary="BOUNDARY"\n\n'
        f"--BOUNDARY\nContent-Type: text/plain; charset=us-ascii\n\n{human}\n\n"
        f"--BOUNDARY\nContent-Type: {machine_type}\n\n{machine}\n"
        f"--BOUNDARY\nContent-Type: text/rfc822-headers; charset=utf-8\n\n{headers}\n"
        "--BOUNDARY--\n"
    )


def dsn(*, to: str, original, action: str = "failed", status: str = "5.1.1",
        diagnostic: str = "smtp; 550 5.1.1 <gone@example.net>: Recipient address rejected: User unknown"):
    """A delivery status notification as RFC 3464 lays it out (Postfix's, in substance)."""
    return _report(
        report_type="delivery-status", to=to, subject="Undelivered Mail Returned to Sender",
        human="I'm sorry to have to inform you that your message could not be delivered.",
        machine_type="message/delivery-status",
        machine=("Reporting-MTA: dns; mx.example.net\nArrival-Date: Sat, 21 Nov 2026 09:00:00 +0000\n\n"
                 f"Final-Recipient: rfc822; gone@example.net\nOriginal-Recipient: rfc822;gone@example.net\n"
                 f"Action: {action}\nStatus: {status}\nRemote-MTA: dns; mx.example.net\nDiagnostic-Code: {diagnostic}\n"),
        original=original,
    )


def arf(*, to: str, original):
    """An abuse report of a feedback loop (RFC 5965)."""
    return _report(
        report_type="feedback-report", to=to, subject="complaint about message", human="This is an email abuse report.",
        machine_type="message/feedback-report",
        machine="Feedback-Type: abuse\nUser-Agent: SomeGenerator/1.0\nVersion: 1\nOriginal-Rcpt-To: gone@example.net\n",
        original=original,
    )


def maildir_with(tmp_path, *messages) -> str:
    box = mailbox.Maildir(tmp_path / "bounces", create=True)
    for message in messages:
        box.add(message.as_bytes())
    return f"maildir://{tmp_path / 'bounces'}"


def test_a_hard_bounce_fails_the_message_and_stops_further_mail(sent, tmp_path):
    verp = f"bounces+{sent['delivery'].token}@mail.alpha.test"
    url = maildir_with(tmp_path, dsn(to=verp, original=sent["original"]))

    first = email_bounces_poll(url=url)
    again = email_bounces_poll(url=url)

    message, contact = Message.objects.get(pk=sent["message"].pk), Contact.objects.get(pk=sent["contact"].pk)
    assert (first, again) == ({"hard": 1}, {})
    assert message.status == "failed"
    assert message.error.startswith("bounced: 5.1.1 smtp; 550 5.1.1")
    assert message.metadata["bounce"]["status"] == "5.1.1"
    assert contact.is_email_consented is False
    [opt_out] = Event.objects.filter(type="opt_out")
    assert opt_out.payload["reason"] == "hard_bounce"
    delivery = EmailDelivery.objects.get()
    assert (delivery.bounce_type, delivery.bounce_detail[:5]) == ("hard", "5.1.1")


def test_a_soft_bounce_is_noted_and_changes_nothing_else(sent, tmp_path):
    verp = f"bounces+{sent['delivery'].token}@mail.alpha.test"
    url = maildir_with(tmp_path, dsn(to=verp, original=sent["original"], action="delayed", status="4.2.2",
                                     diagnostic="smtp; 452 4.2.2 Mailbox full"))

    assert email_bounces_poll(url=url) == {"soft": 1}

    assert Message.objects.get(pk=sent["message"].pk).status == "sent"
    assert Contact.objects.get(pk=sent["contact"].pk).is_email_consented is True
    assert EmailDelivery.objects.get().bounce_type == "soft"


def test_a_complaint_revokes_consent_and_shows_on_the_message(sent, tmp_path):
    path = tmp_path / "bounces.mbox"
    box = mailbox.mbox(path)
    box.add(arf(to="fbl@mail.alpha.test", original=sent["original"]).as_bytes())
    box.add(b"From: someone@example.org\nTo: bounces@mail.alpha.test\nSubject: out of office\n\nAway until Monday.\n")
    box.close()

    counts = email_bounces_poll(url=f"mbox://{path}")

    message = Message.objects.get(pk=sent["message"].pk)
    assert counts == {"complaint": 1, "not_a_report": 1}
    assert message.status == "sent"
    assert "complaint: reported as spam (abuse)" in message.error
    assert "complaint" in message.metadata
    assert Contact.objects.get(pk=sent["contact"].pk).is_email_consented is False
    assert Event.objects.filter(type="message.complained").count() == 1
    assert len(mailbox.mbox(path)) == 0  # processed reports leave the mbox


def test_a_bounce_matched_by_its_message_id_without_verp(sent, tmp_path):
    url = maildir_with(tmp_path, dsn(to="postmaster@alpha.test", original=sent["original"]))

    assert email_bounces_poll(url=url) == {"hard": 1}
    assert Message.objects.get(pk=sent["message"].pk).status == "failed"


def test_a_report_about_an_email_we_never_sent_is_unmatched(sent, tmp_path):
    stranger = EmailMessage()
    stranger["Message-ID"] = "<never@elsewhere.example>"
    url = maildir_with(tmp_path, dsn(to="bounces+0123456789abcdef01234567@mail.alpha.test", original=stranger))

    assert email_bounces_poll(url=url) == {"unmatched": 1}
    assert Message.objects.get(pk=sent["message"].pk).status == "sent"


def test_the_verp_token_wins_over_a_message_id(sent):
    raw = dsn(to=f"bounces+{sent['delivery'].token}@mail.alpha.test", original=sent["original"]).as_bytes()
    report = bounce_parse(email.message_from_bytes(raw, policy=email.policy.default))

    assert (report.kind, report.token, report.status) == ("hard", sent["delivery"].token, "5.1.1")
    assert report.message_id == sent["delivery"].provider_message_id


def test_the_command_reads_the_configured_mailbox(sent, tmp_path, settings, capsys):
    settings.EMAIL_BOUNCE_MAILBOX_URL = maildir_with(
        tmp_path, dsn(to=f"bounces+{sent['delivery'].token}@mail.alpha.test", original=sent["original"])
    )

    call_command("email_bounces_poll")

    assert "hard: 1" in capsys.readouterr().out
    assert email_bounces_poll() == {}


class FakeImapServer:
    """Just enough IMAP4rev1 (LOGIN, SELECT, SEARCH UNSEEN, FETCH BODY.PEEK[], STORE +FLAGS, LOGOUT) on 127.0.0.1."""

    def __init__(self, messages: list[bytes]):
        import socketserver
        import threading

        self.messages, self.seen, self.logins = list(messages), set(), []
        server = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, text: str) -> None:
                self.wfile.write(text.encode() + b"\r\n")

            def handle(self):
                self.reply("* OK fake IMAP ready")
                for line in self.rfile:
                    tag, command, *rest = [*line.decode().strip().split(" ", 2), ""]
                    command, argument = command.upper(), rest[0]
                    if command == "CAPABILITY":
                        self.reply("* CAPABILITY IMAP4rev1 AUTH=PLAIN")
                    elif command == "LOGIN":
                        server.logins.append(argument)
                    elif command == "SELECT":
                        self.reply(f"* {len(server.messages)} EXISTS")
                    elif command == "SEARCH":
                        unseen = [str(number) for number in range(1, len(server.messages) + 1) if number not in server.seen]
                        self.reply("* SEARCH " + " ".join(unseen))
                    elif command == "FETCH":
                        number = int(argument.split(" ")[0])
                        body = server.messages[number - 1]
                        self.wfile.write(f"* {number} FETCH (BODY[] {{{len(body)}}}\r\n".encode() + body + b")\r\n")
                    elif command == "STORE":
                        server.seen.add(int(argument.split(" ")[0]))
                    elif command == "LOGOUT":
                        self.reply("* BYE")
                        self.reply(f"{tag} OK LOGOUT completed")
                        return
                    self.reply(f"{tag} OK {command} completed")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_bounces_are_read_from_an_imap_mailbox_and_marked_seen(sent):
    report = dsn(to=f"bounces+{sent['delivery'].token}@mail.alpha.test", original=sent["original"]).as_bytes()
    imap = FakeImapServer([report])
    try:
        url = f"imap://bounce%40alpha.test:s3cret@127.0.0.1:{imap.port}/INBOX"
        first = email_bounces_poll(url=url)
        again = email_bounces_poll(url=url)
    finally:
        imap.stop()

    assert (first, again) == ({"hard": 1}, {})
    assert imap.seen == {1}
    assert imap.logins[0].split(" ")[0].strip('"') == "bounce@alpha.test"
    assert Message.objects.get(pk=sent["message"].pk).status == "failed"
