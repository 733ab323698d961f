"""A burst of mails through worker kills, a NATS kill and 20 % throttling: each mail arrives once."""

import threading

import pytest

from tests.faults.stack import mail, wait_until

pytestmark = pytest.mark.faults

MAILS = 250
MAILBOXES = 5
SETTLE_SECONDS = 150
# Sends take this long in the sandbox and clients pause between requests, so that the burst lasts a
# few seconds and every kill lands while mails are being accepted or sent.
SEND_LATENCY_MS = 150
CLIENT_PAUSE_SECONDS = 0.05


def test_faulty_burst_sends_each_mail_once(stack):
    senders = [stack.add_sender() for _ in range(MAILBOXES)]
    mailboxes = [mailbox for _, mailbox in senders]
    stack.sandbox.add_fault(status=429, retry_after=1, rate=0.2, operations=["sendMail"])
    stack.sandbox.add_fault(latency_ms=SEND_LATENCY_MS, operations=["sendMail"])
    stack.start_ingest()
    first, second = stack.start_worker(), stack.start_worker()
    mails = [(mail(senders[n % MAILBOXES][0], f"burst-{n}"), f"burst-{n}") for n in range(MAILS)]
    job_ids = [""] * MAILS
    poster = threading.Thread(target=stack.post_all, args=(mails,),
                              kwargs={"pause_seconds": CLIENT_PAUSE_SECONDS, "job_ids": job_ids})

    def accepted() -> int:
        return sum(1 for job_id in job_ids if job_id)

    def captured() -> int:
        return sum(stack.captured_subjects(mailboxes).values())

    poster.start()
    assert wait_until(lambda: captured() >= MAILS * 0.1, 60)
    stack.kill_worker(first)
    stack.start_worker()
    assert wait_until(lambda: accepted() >= MAILS * 0.5, 60)
    stack.servers.nats.kill()
    stack.servers.nats.start()
    assert wait_until(lambda: captured() >= MAILS * 0.6, 90)
    stack.kill_worker(second)
    stack.start_worker()
    poster.join(timeout=120)

    statuses = stack.wait_for_statuses(job_ids, {"sent"}, SETTLE_SECONDS)
    assert accepted() == MAILS
    assert set(statuses.values()) == {"sent"}
    assert stack.captured_subjects(mailboxes) == {f"burst-{n}": 1 for n in range(MAILS)}
