"""The sender (sms.send through the worker pool, batch and single paths) uses the client's own
Twilio account when it connected one, and the platform's otherwise."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from dbr.providers.twilio import LOCAL_ACCOUNT_SID
from dbr.rpc import call_rpc
from tests.support import caller_for
from tests.support.outreach import (
    NOWHERE,
    make_dataset,
    make_lead,
    make_sender,
    queue_sms,
    run_pool,
    send_job,
)
from tests.team.conftest import add_member
from workers.handlers.sms import send_sms

pytestmark = [
    pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The 'auth' parameter is deprecated:DeprecationWarning"),
]


@pytest.fixture(params=["batch", "single"])
def path(request: Any) -> dict[str, Any]:
    return {} if request.param == "batch" else {"batch_handlers": {}}


def test_each_client_sends_from_its_own_account(
    db: Any, settings: Any, twilio: Any, path: Any
) -> None:
    sms_settings = settings.model_copy(
        update={"twilio_base_url": twilio.base_url, "public_webhook_base_url": NOWHERE}
    )
    own = make_sender(db, service=False)
    platform = make_sender(db, service=False)
    admin, _ = add_member(db, own.client_id)
    sid, token = "AC" + uuid.uuid4().hex, uuid.uuid4().hex
    twilio.standin.add_account(sid, token, [own.number])
    call_rpc(
        db,
        caller_for(admin),
        "connect_twilio",
        {"account_sid": sid, "auth_token": token, "phone_number": own.number},
    )
    mine = queue_sms(db, make_lead(db, own, make_dataset(db, own.client_id)), "From my account")
    theirs = queue_sms(
        db, make_lead(db, platform, make_dataset(db, platform.client_id)), "From the platform"
    )

    def done() -> bool:
        return all(send_job(db, m)["status"] in ("done", "dead") for m in (mine, theirs))

    run_pool(sms_settings, {"sms.send": send_sms}, done, **path)
    sent = twilio.standin.sent()
    sent_mine = next(m for m in sent if m["body"].startswith("From my account"))
    sent_theirs = next(m for m in sent if m["body"].startswith("From the platform"))
    assert sent_mine["account_sid"] == sid
    assert sent_theirs["account_sid"] == LOCAL_ACCOUNT_SID
    assert send_job(db, mine)["status"] == send_job(db, theirs)["status"] == "done"
