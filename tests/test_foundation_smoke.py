from __future__ import annotations

import smtplib
from email.message import EmailMessage

from tests.conftest import SMTPSink


def test_smtp_sink_receives_and_parses(smtp_server: SMTPSink) -> None:
    msg = EmailMessage()
    msg["From"] = "a@test.example"
    msg["To"] = "b@test.example"
    msg["Subject"] = "hello"
    msg.set_content("body")
    with smtplib.SMTP(smtp_server.host, smtp_server.port) as s:
        s.send_message(msg)
    got = smtp_server.messages()
    assert len(got) == 1 and got[0]["Subject"] == "hello"


def test_browser_renders_a_page(browser, tmp_path) -> None:
    page_file = tmp_path / "p.html"
    page_file.write_text("<h1 id=t>Hi</h1>")
    page = browser.new_page()
    page.goto(page_file.as_uri())
    assert page.inner_text("#t") == "Hi"
    page.close()
