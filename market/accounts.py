"""The community's books: balances, meters, slot terms, contracts and their settlement.

Money is an exact integer in tick·Wh (a price in ticks per kWh times an
energy in Wh). It enters and leaves only by the operator's ``Deposit`` and
``Withdraw``; everything else moves it between accounts, so the sum of all
balances always equals deposits minus withdrawals (``conserved``).

Which record binds (see docs/settlement.md):

- In a CDA slot (the default) every trade is a contract: at settlement the
  buyer pays the seller price x quantity.
- In a slot the operator runs as a cleared market (``SetSlotTerms`` with
  market ``"cleared"``, the community-manager market of 12.5.2), the slot's
  published clearing settlements are the contracts instead; what they do
  not balance (the clearing's loss and congestion penalties) goes to the DSO.

A slot is settled once (``SettleSlot``), after its gate closed: each
account's imbalance (metered minus contracted energy) is bought from the
grid at the slot's import price or sold to it at the export price, and each
account gets a ``StatementRecord``. A meter that sent no reading counts as
0 Wh (nothing delivered, nothing consumed).

System accounts (no key holds them): ``GRID`` (the counterparty of every
imbalance), ``DSO`` (grid charges and clearing penalties) and ``TREASURY``
(the community's own money).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from ledger.results import StatementRecord

GRID = hashlib.sha256(b"p2pex/system-account/v1\x00grid").digest()
DSO = hashlib.sha256(b"p2pex/system-account/v1\x00dso").digest()
TREASURY = hashlib.sha256(b"p2pex/system-account/v1\x00treasury").digest()
SYSTEM_ACCOUNTS = {"grid": GRID, "dso": DSO, "treasury": TREASURY}

Slot = tuple[str, int]  # (product, slot)


@dataclass(frozen=True, slots=True)
class SlotTerms:
    """A slot's grid tariffs (ticks per kWh) and its binding market."""

    import_price: int
    export_price: int
    market: str  # "cda" | "cleared"


@dataclass(slots=True)
class Contract:
    """An account's binding position in one slot: net energy sold (+) and money received (+)."""

    energy_wh: int = 0
    money: int = 0
    charges: int = 0  # grid charges: paid (<= 0) by a peer, received (>= 0) by the DSO


@dataclass(slots=True)
class Accounts:
    """The money state of the exchange (part of ``ExchangeState``)."""

    balances: dict[bytes, int] = field(default_factory=dict)  # account -> tick·Wh
    meters: dict[bytes, bytes] = field(default_factory=dict)  # meter public key -> account
    terms: dict[Slot, SlotTerms] = field(default_factory=dict)
    contracts: dict[Slot, dict[bytes, Contract]] = field(default_factory=dict)
    cleared_rows: dict[Slot, tuple[tuple[bytes, int, int], ...]] = field(default_factory=dict)
    readings: dict[Slot, dict[bytes, int]] = field(default_factory=dict)  # -> account -> Wh
    settled: set[Slot] = field(default_factory=set)
    deposited: int = 0  # tick·Wh: all deposits minus all withdrawals

    # -- money in and out ------------------------------------------------------------------------

    def deposit(self, account: bytes, amount: int) -> int:
        """Credit ``account``; return its balance after."""
        self.deposited += amount
        balance = self.balances[account] = self.balances.get(account, 0) + amount
        return balance

    def withdraw(self, account: bytes, amount: int) -> int | None:
        """Debit ``account``; return its balance after, or None if it holds less (no change)."""
        balance = self.balances.get(account, 0)
        if balance < amount:
            return None
        self.deposited -= amount
        self.balances[account] = balance - amount
        return balance - amount

    def conserved(self) -> bool:
        """True when the balances add up to deposits minus withdrawals, to the tick·Wh."""
        return sum(self.balances.values()) == self.deposited

    # -- contracts ------------------------------------------------------------------------------

    def record_trade(
        self,
        key: Slot,
        seller: bytes,
        buyer: bytes,
        price: int,
        quantity: int,
        seller_charge: int = 0,
        buyer_charge: int = 0,
    ) -> None:
        """A CDA trade: the seller owes ``quantity`` Wh, the buyer ``price x quantity`` tick·Wh.

        Each side also owes the DSO its grid charge (ticks per kWh) on the
        quantity (mode 3). A negative quantity takes a trade back out.
        """
        slot = self.contracts.get(key)
        if slot is None:
            slot = self.contracts[key] = {}
        money = price * quantity
        sell = slot.get(seller)
        if sell is None:
            sell = slot[seller] = Contract()
        sell.energy_wh += quantity
        sell.money += money
        sell.charges -= seller_charge * quantity
        buy = slot.get(buyer)
        if buy is None:
            buy = slot[buyer] = Contract()
        buy.energy_wh -= quantity
        buy.money -= money
        buy.charges -= buyer_charge * quantity

    # -- settlement -----------------------------------------------------------------------------

    def settle(self, key: Slot) -> list[StatementRecord]:
        """Settle a delivered slot: move the money, return one statement per account concerned.

        Requires: the slot has terms, is closed and not settled (the caller checks).
        Statements come in account order, the grid's and the DSO's included
        when they moved money; their payments add up to exactly 0.
        """
        terms = self.terms[key]
        contracts = self._binding_contracts(key, terms)
        readings = self.readings.pop(key, {})
        payments: dict[bytes, int] = {}
        rows: dict[bytes, tuple[int, int, int, int]] = {}  # contracted, metered, imbalance, charges
        grid_energy = grid_money = 0
        for account in sorted(set(contracts) | set(readings)):
            contract = contracts.get(account) or Contract()
            if account not in readings and contract == Contract():
                continue  # its only trade was taken back (a refused mode-4 trade)
            metered = readings.get(account, 0)
            imbalance = metered - contract.energy_wh
            if imbalance >= 0:  # delivered more or used less: the grid takes the surplus
                imbalance_money = imbalance * terms.export_price
            else:  # the grid delivers the shortfall
                imbalance_money = imbalance * terms.import_price
            grid_energy -= imbalance
            payments[account] = payments.get(account, 0) + contract.money + imbalance_money
            payments[account] += contract.charges
            grid_money -= imbalance_money
            rows[account] = (contract.energy_wh, metered, imbalance, contract.charges)
        if grid_energy or grid_money:
            payments[GRID] = payments.get(GRID, 0) + grid_money
        residual = -sum(payments.values())
        if residual:  # clearing penalties or grid charges not credited to anyone yet
            payments[DSO] = payments.get(DSO, 0) + residual
        statements = []
        for account in sorted(payments):
            payment = payments[account]
            balance = self.balances[account] = self.balances.get(account, 0) + payment
            contracted, metered, imbalance, charges = rows.get(account, (0, 0, 0, 0))
            if account == GRID:
                metered = grid_energy
            if account == DSO:
                charges += residual
            statements.append(
                StatementRecord(
                    key[0],
                    key[1],
                    account,
                    contracted,
                    metered,
                    imbalance,
                    charges,
                    payment,
                    balance,
                )
            )
        self.settled.add(key)
        self.contracts.pop(key, None)
        self.cleared_rows.pop(key, None)
        return statements

    def _binding_contracts(self, key: Slot, terms: SlotTerms) -> dict[bytes, Contract]:
        if terms.market == "cleared":
            return {
                account: Contract(energy_wh, payment)
                for account, energy_wh, payment in self.cleared_rows.get(key, ())
            }
        return self.contracts.get(key, {})

    # -- digest ---------------------------------------------------------------------------------

    def digest_record(self) -> list[object]:
        """Everything above as canonical values (ints, bytes, str, lists), in a fixed order."""
        return [
            self.deposited,
            [[a, b] for a, b in sorted(self.balances.items())],
            [[m, a] for m, a in sorted(self.meters.items())],
            [
                [p, s, t.import_price, t.export_price, t.market]
                for (p, s), t in sorted(self.terms.items())
            ],
            [
                [p, s, [[a, c.energy_wh, c.money, c.charges] for a, c in sorted(slot.items())]]
                for (p, s), slot in sorted(self.contracts.items())
            ],
            [[p, s, [list(r) for r in rows]] for (p, s), rows in sorted(self.cleared_rows.items())],
            [
                [p, s, [[a, e] for a, e in sorted(slot.items())]]
                for (p, s), slot in sorted(self.readings.items())
            ],
            [[p, s] for p, s in sorted(self.settled)],
        ]
