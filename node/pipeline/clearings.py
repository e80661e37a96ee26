"""Clearing jobs: each closed slot is cleared once, in a worker process, and published.

Whoever closes a slot, once the closing block is stored the runner builds
the slot's clearing job from the state (``market.gate_clearing``), solves it
in a process pool (importing the solver takes seconds, and a solve must not
hold the event loop) and publishes the rounded settlements and the
certificate with a ``PublishClearing`` the operator signs.

A slot with heat (``market.gate_plan``) is cleared once, jointly, when the
later of its electricity and heat gates closes; its one certificate is
published twice, with the electricity settlements and with the heat ones.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor

from market import gate_plan
from market import transactions as txn
from market.state import ExchangeState, Outcome

log = logging.getLogger("p2pex.clearings")


class ClearingRunner:
    """Owns the clearing worker pool and one task per slot being cleared."""

    def __init__(
        self,
        state: Callable[[], ExchangeState],
        model: str,
        submit: Callable[[txn.Payload], Awaitable[Outcome]],
    ) -> None:
        self.state = state
        self.model = model
        self.submit = submit
        self.pool: ProcessPoolExecutor | None = None
        self.tasks: dict[tuple[str, int], asyncio.Task[None]] = {}

    def warm(self) -> ProcessPoolExecutor:
        """The worker pool, started on first use (with the solver imported in the worker)."""
        if self.pool is None:
            from market import gate_clearing  # late: the solver stack only where clearing runs

            # spawn, not fork: the node has threads (asyncio's executor) and a live loop
            self.pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn")
            )
            # Importing the solver takes seconds: do it now, in the worker, so
            # the first gate closure does not wait for it.
            self.pool.submit(gate_clearing.warm_up)
        return self.pool

    def after_block(self, closes: list[tuple[str, int]], sets_network: bool) -> None:
        """Start the clearing of every slot a stored block closed.

        A published network means clearings will follow: start the worker.
        """
        if sets_network:
            self.warm()
        for product, slot in closes:
            self.start(product, slot)

    def resume(self) -> None:
        """After a restart: clear the closed slots that have curves and no published result."""
        state = self.state()
        if state.network_json:
            self.warm()
        for key in sorted(state.closed):
            self.start(*key)

    def start(self, product: str, slot: int) -> None:
        """Clear (product, slot) unless it is cleared, being cleared, or has nothing to clear.

        A slot with heat waits for both its gates: the closure of the later
        one starts the joint clearing, under the electricity key.
        """
        state = self.state()
        products = gate_plan.products_cleared_with(state, product, slot)
        keys = [(p, slot) for p in products]
        if any(k in self.tasks for k in keys) or all(k in state.clearings for k in keys):
            return
        if not gate_plan.ready_to_clear(state, product, slot):
            return
        terms = state.gate_terms.get(keys[0])
        if not gate_plan.has_inputs(state, product, slot) or terms is None or not terms[1]:
            return
        task = asyncio.create_task(self._clear(products[0], slot))
        for k in keys:
            self.tasks[k] = task

    async def _clear(self, product: str, slot: int) -> None:
        from market import gate_clearing

        job = gate_clearing.job_from_state(self.state(), product, slot, self.model)
        loop = asyncio.get_running_loop()
        try:
            rows, certificate = await loop.run_in_executor(
                self.warm(), gate_clearing.clear_job, job
            )
            for each, settlements in rows.items():
                if (each, slot) in self.state().clearings:
                    continue  # published before a restart
                await self.submit(txn.PublishClearing(each, slot, settlements, certificate))
                log.info("published the clearing of %s slot %d", each, slot)
        except Exception:
            log.exception("clearing of %s slot %d failed", product, slot)

    async def close(self) -> None:
        """Cancel the running jobs and stop the pool."""
        for task in self.tasks.values():
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
