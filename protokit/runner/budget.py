"""The budget of a run: a spending ceiling that holds at any concurrency."""

from __future__ import annotations

import asyncio
import logging
import threading

from protokit.errors import BudgetExceeded
from protokit.models import prices
from protokit.models.base import Model, Request, Response

__all__ = ["Budget"]

_log = logging.getLogger(__name__)

_BUDGET_POLL_S = 0.01  # how often a call waiting for budget looks again while others are in flight


class Budget:
    """A spending ceiling that holds at any concurrency: reserve before sending, settle on the answer.

    A call reserves its estimated cost (prompt tokens plus ``max_tokens``, or the most a
    call of that model has produced in this run, or ``DEFAULT_OUTPUT_TOKENS``) before it
    is sent; a call whose reservation would cross the limit is not sent. When it ends,
    the reservation is replaced by what it really cost. So calls in flight are counted,
    and spend stays within the limit plus the estimation error of one call.
    """

    def __init__(self, limit_usd: float) -> None:
        self.limit_usd = limit_usd
        self.spent_usd = 0.0
        self.reserved_usd = 0.0
        self.in_flight = 0  # reservations not settled yet (a count: float sums never quite return to 0)
        self._typical_output: dict[str, int] = {}
        self.stops = 0  # calls refused so far
        self._lock = threading.Lock()  # judge calls may settle from another thread's loop

    def __repr__(self) -> str:
        return f"Budget(limit=${self.limit_usd:g}, spent=${self.spent_usd:.4f}, reserved=${self.reserved_usd:.4f})"

    @property
    def exhausted(self) -> bool:
        """True once what is spent and reserved reaches the limit."""
        return self.spent_usd + self.reserved_usd >= self.limit_usd

    def estimate(self, model: Model, request: Request) -> float:
        """The reservation for one call of ``model``."""
        typical = self._typical_output.get(model.id, prices.DEFAULT_OUTPUT_TOKENS)
        return model.estimate_cost(request, typical)

    def reserve(self, usd: float) -> bool:
        """Hold ``usd`` for a call about to be sent; False (nothing held) when it would cross the limit."""
        with self._lock:
            if self.spent_usd + self.reserved_usd + usd > self.limit_usd:
                return False
            self.reserved_usd += usd
            self.in_flight += 1
            return True

    async def acquire(self, model: Model, request: Request) -> float:
        """Reserve a call's estimate, waiting while calls in flight may settle below their estimates.

        Returns what was reserved; raises BudgetExceeded when the call cannot fit even with
        nothing in flight. Waiting (rather than refusing at once) lets the budget be spent
        to its end: reservations are upper bounds, and answers usually cost less.
        """
        while True:
            usd = self.estimate(model, request)  # re-estimated: settled answers teach the typical length
            if self.reserve(usd):
                return usd
            with self._lock:
                waiting_helps = self.in_flight > 0
            if not waiting_helps:
                refusal = self.refusal(model, request, usd)
                with self._lock:
                    self.stops += 1
                    first = self.stops == 1
                # The first stop of a run is worth a warning; the calls refused after it, a debug line each.
                _log.log(logging.WARNING if first else logging.DEBUG, "budget stop: %s", refusal)
                raise refusal
            await asyncio.sleep(_BUDGET_POLL_S)

    def settle(self, reserved: float, model: Model | None, response: Response | None) -> None:
        """Release a reservation and count what the call really cost (nothing when it failed)."""
        with self._lock:
            self.in_flight -= 1
            self.reserved_usd = max(0.0, self.reserved_usd - reserved) if self.in_flight else 0.0
            if response is not None and not response.cached:
                self.spent_usd += response.cost_usd or 0.0
                if model is not None and response.output_tokens:
                    seen = self._typical_output.get(model.id, 0)
                    self._typical_output[model.id] = max(seen, response.output_tokens)

    def spend(self, usd: float | None) -> None:
        """Count money spent outside a reserved call."""
        if usd:
            with self._lock:
                self.spent_usd += usd

    def refusal(self, model: Model, request: Request, reserve: float) -> BudgetExceeded:
        """The error of a call that was not sent because of the budget."""
        left = self.limit_usd - self.spent_usd - self.reserved_usd
        if self.spent_usd == 0 and self.reserved_usd == 0 and not request.options.get("max_tokens"):
            # Nothing ran: the guess of the answer's length is what does not fit.
            return BudgetExceeded(
                f"not run: {model.id} would need ~${reserve:.4f} (assuming {prices.DEFAULT_OUTPUT_TOKENS} output "
                f"tokens) and the budget is ${self.limit_usd:.4f}; set max_tokens= to bound each answer "
                "or raise budget_usd=")
        return BudgetExceeded(
            f"not run: {model.id} would need ~${reserve:.4f} and ${left:.4f} "
            f"of the ${self.limit_usd:.4f} budget is left (${self.spent_usd:.4f} spent, "
            f"${self.reserved_usd:.4f} held by calls in flight); raise budget_usd= to run the rest")
