"""Webhook deliveries from the outbox: signed POSTs, retried with backoff.

At least once: a delivery is marked done only after the receiver answered 2xx, so a node
that stops between the POST and that mark sends it again after its restart, with the same
`Cofab-Delivery` id: receivers drop ids they have processed. A failed attempt (no answer
in `TIMEOUT` s, or a status other than 2xx) is retried after `retry_base * 2^(n-1)`
seconds (capped at `retry_cap`), each wait drawn between half and all of that (jitter, so
receivers coming back are not hit by every node at once); after `max_attempts` the
delivery is marked failed and shows in the webhook's list.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

import httpx

from ledger import __version__
from ledger.core.errors import InvalidInput
from ledger.core.settings import NotifySettings
from ledger.notify.outbox import Delivery, Outbox
from ledger.notify.signing import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    GS1_SIGNATURE_HEADER,
    SIGNATURE_HEADER,
    sign,
)
from ledger.notify.urls import check_url

log = logging.getLogger("cofab.notify")
TIMEOUT = 10.0


def retry_delay(attempts: int, settings: NotifySettings) -> float | None:
    """Seconds to wait after the `attempts`-th failed attempt; None: give up."""
    if attempts >= settings.max_attempts:
        return None
    full = min(settings.retry_cap, settings.retry_base * 2 ** (attempts - 1))
    return random.uniform(full / 2, full)


class Dispatcher:
    def __init__(
        self,
        outbox: Outbox,
        settings: NotifySettings,
        own: Callable[[], set[tuple[str, int]]],
    ) -> None:
        self.outbox = outbox
        self.settings = settings
        self.own = own
        self.client = httpx.Client(timeout=TIMEOUT, follow_redirects=False, trust_env=False)

    def run_due(self) -> int:
        """Attempt every delivery that is due now; how many were attempted."""
        due = self.outbox.due_deliveries(time.time())
        for delivery in due:
            self.send(delivery)
        return len(due)

    def send(self, d: Delivery) -> None:
        status: int | None = None
        try:
            check_url(d.url, allow_private=self.settings.allow_private, own=self.own())
            signature = sign(d.secret, d.body)
            headers = {
                "Content-Type": "application/json",
                "User-Agent": f"cofab-webhooks/{__version__}",
                SIGNATURE_HEADER: signature,
                DELIVERY_HEADER: d.id,
                EVENT_HEADER: d.event,
            }
            if d.report:  # EPCIS 2.0 names the subscription's signature GS1-Signature
                headers[GS1_SIGNATURE_HEADER] = signature
            response = self.client.post(d.url, content=d.body, headers=headers)
            status = response.status_code
            if 200 <= status < 300:
                self.outbox.delivered(d.id, status)
                return
            error = f"the receiver answered HTTP {status}"
        except InvalidInput as exc:
            error = exc.message
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        wait = retry_delay(d.attempts + 1, self.settings)
        self.outbox.attempt_failed(
            d.id, status, error, None if wait is None else time.time() + wait
        )
        if wait is None:
            log.warning("webhook %s: delivery %s failed for good: %s", d.webhook_id, d.id, error)

    def close(self) -> None:
        self.client.close()
