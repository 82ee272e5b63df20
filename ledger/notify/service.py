"""The node's notification service: the deriver and the webhook dispatcher, run in the
background for as long as the node runs, and the members' webhooks."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ledger.core.errors import FaultLog, InvalidInput, NotFound
from ledger.core.private import private_dir
from ledger.core.settings import NotifySettings
from ledger.notify.deriver import Deriver, Sources
from ledger.notify.dispatcher import Dispatcher
from ledger.notify.events import EventType, parse_types
from ledger.notify.outbox import Outbox, Webhook
from ledger.notify.urls import check_url

log = logging.getLogger("cofab.notify")
MAX_WEBHOOKS = 20  # per member


class NotifyService:
    def __init__(
        self,
        sources: Sources,
        directory: Path,
        identity: str,
        settings: NotifySettings,
        *,
        interval: float = 1.0,
    ) -> None:
        name = f"{sources.chain.chain_id}-{sources.jobs.address.lower()}.sqlite"
        self.outbox = Outbox.for_chain(private_dir(directory) / name, identity)
        self.settings = settings
        confirmations = (
            sources.chain.confirmations
            if settings.confirmations is None
            else settings.confirmations
        )
        self.deriver = Deriver(
            sources, self.outbox, confirmations=confirmations, lead=settings.lead
        )
        self.own: set[tuple[str, int]] = set()  # where this node serves its API
        self.dispatcher = Dispatcher(self.outbox, settings, lambda: set(self.own))
        self.interval = interval
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self.tickers: list[Callable[[], object]] = []  # also run each round (EPCIS reports)

    # --- webhooks ------------------------------------------------------------------------
    def add_webhook(self, owner: str, url: str, events: list[str]) -> tuple[Webhook, str]:
        """Register a webhook of `owner` (the signed-in member) for `events`; returns it
        and its signing secret, which is shown this once."""
        if not events:
            raise InvalidInput("name at least one event type (or *)", field="events")
        try:
            types = parse_types(events)
        except ValueError:
            known = ", ".join(e.value for e in EventType)
            raise InvalidInput(
                f"unknown event type in {events}: known are {known} (or * for all)",
                field="events",
            ) from None
        checked = check_url(url, allow_private=self.settings.allow_private, own=self.own)
        if len(self.outbox.webhooks(owner)) >= MAX_WEBHOOKS:
            raise InvalidInput(f"a member may register at most {MAX_WEBHOOKS} webhooks")
        return self.outbox.add_webhook(owner, checked, types)

    def add_endpoint(self, owner: str, url: str, secret: str | None = None) -> tuple[Webhook, str]:
        """A webhook of `owner` that receives only the reports addressed to it (an EPCIS
        query subscription's `dest`), signed with `secret` (the subscriber's
        signatureToken) or a new one; checked like any webhook URL."""
        checked = check_url(url, allow_private=self.settings.allow_private, own=self.own)
        return self.outbox.add_webhook(owner, checked, [], secret)

    def webhooks(self, owner: str) -> list[Webhook]:
        return self.outbox.webhooks(owner)

    def remove_webhook(self, owner: str, hook_id: str) -> None:
        if not self.outbox.remove_webhook(owner, hook_id):
            raise NotFound(f"you have no webhook {hook_id}")

    # --- lifecycle -----------------------------------------------------------------------
    def start(self, own: list[tuple[str, int]] | None = None) -> None:
        """Run the deriver and the dispatcher; `own`: where this node serves its API."""
        self.own.update(own or [])
        if self._threads:
            return
        for target, name in ((self._derive_loop, "derive"), (self._dispatch_loop, "deliver")):
            thread = threading.Thread(target=target, name=f"cofab-notify-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _derive_loop(self) -> None:
        said = FaultLog(
            log,
            failed="deriving notifications failed",
            waits="notifications wait for the chain",
            resumed="notifications resumed",
        )
        while not self._stop.is_set():
            for ticker in self.tickers:
                try:
                    ticker()
                except Exception:
                    log.exception("a notification source failed")
            try:
                more = self.deriver.tick()
                self._wake.set()
                said.succeeded()
            except Exception as exc:  # noqa: BLE001 - FaultLog logs it, the loop goes on
                said.failed(exc)
                more = False
            if not more:
                self._stop.wait(self.interval)

    def _dispatch_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.dispatcher.run_due()
            except Exception:
                log.exception("delivering webhooks failed")
            upcoming = self.outbox.next_due()
            wait = self.interval if upcoming is None else upcoming - time.time()
            self._wake.wait(min(max(wait, 0.05), self.interval))
            self._wake.clear()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=15)
        self._threads = []
        self.dispatcher.close()
        self.outbox.close()
