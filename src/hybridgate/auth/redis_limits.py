"""``RedisLimiter``: the ``Limiter`` shared by every replica through one Redis server.

Same semantics as ``MemoryLimiter`` (see ``limits``), counted in Redis instead of the process:
the request and token windows are sorted sets updated by the Lua scripts in ``redis_scripts``,
so a key limited to N requests per minute gets exactly N admissions across all replicas; spend
is ``INCRBYFLOAT`` on one key per UTC day and one per UTC month, expiring an hour after the
period ends. Keys, under ``[redis] key_prefix``: ``limits:{<key id>}:requests``, ``:tokens``
and ``:tokens-total``, ``spend:{<key id>}:<YYYY-MM-DD>`` and ``:<YYYY-MM>`` (the braces keep
one key's data in one Redis Cluster slot).

``seed_spend`` raises a period's spend to at least the given amount and never lowers it (a Lua
max, not SET): every replica seeds at start-up from its own ledger, and Redis already holds the
replicas' shared total. Overwriting would drop what other replicas charged since, and adding
would count the same spend once per replica when they share a ledger. Plain ``SET NX`` would do
for a healthy Redis, but not for one that restarted empty and has since taken a charge or two:
the key exists again, too low. So each replica also remembers the last totals it read; when a
read comes back lower within the same period, Redis lost its data and the replica raises the
totals back (idempotent: the largest wins). Charges between the loss and that read are lost.

If Redis cannot be reached or times out, the gateway keeps serving: each process falls back to
its own ``MemoryLimiter`` (every replica then allows a key's full limit, the budgets continue from
the last spend it read from Redis), logs one warning per outage and reports the reason in
``degraded_reason()`` (shown by /healthz). It tries Redis again at most every ``retry_interval_s``;
once Redis answers it writes back the spend charged meanwhile and counts in Redis again.

Reservations (``reserve``/``settle``, see ``limits``): ``RESERVE`` checks the budgets against the
spend plus the key's running reservations (``limits:{<key id>}:reserved``, members
``"<dollars>:<id>"`` scored by when they lapse, and ``:reserved-total``) and adds the request's
worst case, and its tokens to the token window, in one script; ``SETTLE`` releases the
reservation, sets the token entry to the real count and adds the real cost to the spend, once
per reservation id (the id is its charge id). The spend keys only ever grow, so the loss check
below still holds; a reservation whose gateway died lapses after ``RESERVATION_TTL_S``.

Every charge carries a random id, and Redis applies it at most once (``redis_scripts.CHARGE``
keeps a marker per id for ``CHARGE_ID_TTL_S``: 150 bytes per charge, measured, so 54 MB at 100
requests/s). A charge whose answer timed out may have been applied: it is written back under its
own id, so it counts once; spend charged while Redis was known to be down was never sent and is
written back as one sum per key and day. Charges made while that write-back runs go with it.
A write-back more than ``CHARGE_ID_TTL_S`` after a timed-out charge may count it twice. Budgets
overshoot by at most one reservation while Redis answers, and by what is in flight at once
while it is down; windows and spend use the replicas' own
clocks (``now`` goes into the scripts), so replicas need NTP-synced clocks.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from hybridgate.auth.limits import (
    MemoryLimiter,
    Reservation,
    budget_error,
    rate_headers,
    window_error,
)
from hybridgate.auth.records import KeyRecord
from hybridgate.auth.redis_outage import Charge, Outage
from hybridgate.auth.redis_scripts import CHARGE, CHECK, HEADERS, RAISE, RESERVE, SETTLE
from hybridgate.auth.windows import day_of, month_of, next_day, next_month
from hybridgate.errors import LimitName

log = logging.getLogger("hybridgate.auth")
T = TypeVar("T")
EXPIRY_MARGIN_S = 3600  # a period's spend key outlives the period by an hour
CHARGE_ID_TTL_S = 3600  # how long Redis remembers that a charge was applied
RESERVATION_TTL_S = 900  # a reservation never settled (its gateway died) lapses after this
OUTAGE_ERRORS = (RedisError, OSError, TimeoutError)


class RedisLimiter:
    """The ``Limiter`` for several replicas. ``clock`` returns Unix seconds (tests pass a fake one)."""

    def __init__(
        self,
        client: Redis,
        *,
        key_prefix: str = "hybridgate:",
        clock: Callable[[], float] = time.time,
        retry_interval_s: float = 1.0,
    ) -> None:
        self._redis = client
        self._prefix = key_prefix
        self._clock = clock
        self._check_script = client.register_script(CHECK)
        self._headers_script = client.register_script(HEADERS)
        self._raise_script = client.register_script(RAISE)
        self._charge_script = client.register_script(CHARGE)
        self._reserve_script = client.register_script(RESERVE)
        self._settle_script = client.register_script(SETTLE)
        self._outage = Outage(retry_interval_s)
        self._fallback = MemoryLimiter(clock)
        self._last_spend: dict[str, tuple[str, float, str, float]] = {}

    async def check(self, key: KeyRecord) -> None:
        now = self._clock()
        args: list[str | float] = [
            now,
            _arg(key.rpm),
            _arg(key.tpm),
            _arg(key.budget_usd_day),
            _arg(key.budget_usd_month),
        ]
        keys = self._budget_keys(key.key_id, now)
        answer = await self._shared(lambda: self._check_script(keys, [*args, secrets.token_hex(8)]))
        if answer is None:
            return await self._fallback.check(key)
        await self._verdict(key, answer, now)

    async def reserve(self, key: KeyRecord, usd: float, tokens: int) -> Reservation:
        now = self._clock()
        reservation = Reservation(secrets.token_hex(8), key.key_id, usd, tokens, now, shared=True)
        args: list[str | float | int] = [
            now,
            "",
            _arg(key.tpm),
            _arg(key.budget_usd_day),
            _arg(key.budget_usd_month),
            reservation.reservation_id,
            tokens,
            _member(usd, reservation.reservation_id),
            repr(now + RESERVATION_TTL_S),
            RESERVATION_TTL_S + 60,
        ]
        keys = self._budget_keys(key.key_id, now)
        answer = await self._shared(lambda: self._reserve_script(keys, args))
        if answer is None:
            return await self._fallback.reserve(key, usd, tokens)
        await self._verdict(key, answer, now)
        return reservation

    async def settle(self, reservation: Reservation, cost_usd: float, tokens: int) -> None:
        if not reservation.shared:  # held by this process while Redis was down
            await self._fallback.settle(reservation, 0.0, 0)
            return await self.charge(reservation.key_id, cost_usd, tokens)
        now = self._clock()
        rid, at = reservation.reservation_id, reservation.at
        charge = Charge(rid, reservation.key_id, cost_usd, at)
        keys = [
            *self._windows(reservation.key_id),
            *self._spend_keys(reservation.key_id, at),
            self._marker(reservation.key_id, rid),
            *self._reserved_keys(reservation.key_id),
        ]
        ttls = (_ttl(next_day(at).timestamp(), now), _ttl(next_month(at).timestamp(), now))
        args: list[str | int] = [repr(now), tokens, repr(cost_usd), *ttls, CHARGE_ID_TTL_S, rid]
        args += [f"{reservation.tokens}:{rid}" if reservation.tokens > 0 else ""]
        args += [_member(reservation.usd, rid) if reservation.usd > 0 else ""]
        sent: list[bool] = []

        async def send() -> bool:
            sent.append(True)
            await self._settle_script(keys, args)
            return True

        if not await self._shared(send):  # the reservation lapses in Redis; the cost is kept
            if cost_usd > 0:
                self._outage.keep(charge, bool(sent))
            await self._fallback.charge(reservation.key_id, cost_usd, tokens)

    async def _verdict(self, key: KeyRecord, answer: Any, now: float) -> None:
        """Remember the spend Redis holds and raise the refusal ``answer`` carries, if any."""
        verdict, detail = _text(answer[0]), _text(answer[1])
        day, month, held = float(answer[6]), float(answer[7]), float(answer[8])
        if self._remember(key.key_id, day, month, now):  # Redis lost its data: put the totals back
            await self._shared(lambda: self._seed_now(key.key_id, *self._last_spend[key.key_id][1::2], now))
        headers = rate_headers(key, (int(answer[2]), float(answer[3])), (int(answer[4]), float(answer[5])))
        self._raise_for(key, verdict, detail, (day + held, month + held), now, headers)

    async def charge(self, key_id: str, cost_usd: float, tokens: int) -> None:
        now = self._clock()
        charge = Charge(secrets.token_hex(8), key_id, cost_usd, now)
        sent: list[bool] = []

        async def send() -> bool:
            sent.append(True)
            return await self._charge(charge, tokens, now)

        if not await self._shared(send):
            if cost_usd > 0:  # before any await, so a write-back running now still sees it
                self._outage.keep(charge, bool(sent))
            await self._fallback.charge(key_id, cost_usd, tokens)

    async def headers(self, key: KeyRecord) -> dict[str, str]:
        if key.rpm is None and key.tpm is None:
            return {}
        now = self._clock()
        keys, args = self._windows(key.key_id), [repr(now), _arg(key.rpm), _arg(key.tpm)]
        answer = await self._shared(lambda: self._headers_script(keys, args))
        if answer is None:
            return await self._fallback.headers(key)
        return rate_headers(key, (int(answer[0]), float(answer[1])), (int(answer[2]), float(answer[3])))

    async def seed_spend(self, key_id: str, day_usd: float, month_usd: float) -> None:
        now = self._clock()
        if not await self._shared(lambda: self._seed_now(key_id, day_usd, month_usd, now)):
            await self._fallback.seed_spend(key_id, day_usd, month_usd)

    def degraded_reason(self) -> str | None:
        return self._outage.reason

    async def aclose(self) -> None:
        await self._redis.aclose()

    def _raise_for(
        self,
        key: KeyRecord,
        verdict: str,
        detail: str,
        spent: tuple[float, float],
        now: float,
        headers: dict[str, str],
    ) -> None:
        if verdict in ("budget_day", "budget_month"):
            daily = verdict == "budget_day"
            budget = key.budget_usd_day if daily else key.budget_usd_month
            assert budget is not None
            limit: LimitName = "budget_day" if daily else "budget_month"
            raise budget_error(key, limit, spent[0] if daily else spent[1], budget, now, headers)
        if verdict in ("requests", "tokens"):
            name: LimitName = "requests" if verdict == "requests" else "tokens"
            count = key.rpm if verdict == "requests" else key.tpm
            assert count is not None
            raise window_error(key, name, count, float(detail), headers)

    async def _charge(self, charge: Charge, tokens: int, now: float, pipe: Any = None) -> bool:
        """Apply ``charge`` once: its id makes a retry or a second write-back a no-op."""
        if tokens <= 0 and charge.usd <= 0:
            return True
        at = charge.at
        keys = [
            *self._windows(charge.key_id),
            *self._spend_keys(charge.key_id, at),
            self._marker(charge.key_id, charge.charge_id),
        ]
        ttls = (_ttl(next_day(at).timestamp(), now), _ttl(next_month(at).timestamp(), now))
        args: list[str | int] = [repr(now), tokens, repr(charge.usd), *ttls, CHARGE_ID_TTL_S]
        args.append(charge.charge_id)
        await self._charge_script(keys, args, client=pipe)
        return True

    async def _shared(self, operation: Callable[[], Awaitable[T]]) -> T | None:
        """Run ``operation`` on Redis; None (and the fallback) while Redis is unreachable."""
        now = self._clock()
        outage = self._outage
        if outage.reason is not None:
            if now < outage.next_try:
                return None
            outage.next_try = now + outage.retry_interval_s  # this call probes; the others wait
        try:
            if outage.reason is not None:
                await self._recover(now)
            return await operation()
        except OUTAGE_ERRORS as exc:
            if outage.begin(exc, now):
                log.warning("rate limits fall back to this process: %s", outage.reason)
                await self._seed_fallback(now)
            return None

    async def _recover(self, now: float) -> None:
        """Redis answers again: put back the spend it lost (if it restarted empty) and what was
        charged here meanwhile, including what other calls charge locally while this one writes."""
        await self._redis.ping()  # a probe that changes nothing: only then is anything sent
        async with self._redis.pipeline(transaction=False) as pipe:
            for key_id, (day, day_usd, month, month_usd) in list(self._last_spend.items()):
                await self._seed(pipe, key_id, (day, day_usd), (month, month_usd), now)
            await pipe.execute()
        while self._outage.unsent or self._outage.pending:
            charges = self._outage.take()
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for charge in charges:
                        await self._charge(charge, 0, now, pipe)
                    await pipe.execute()
            except BaseException:
                self._outage.pending[:0] = charges  # same ids next time: applied at most once
                raise
        self._outage.reason = None  # no await since the loop saw nothing left to write
        self._fallback = MemoryLimiter(self._clock)
        log.warning("rate limits are shared through redis again")

    async def _seed_now(self, key_id: str, day_usd: float, month_usd: float, now: float) -> bool:
        async with self._redis.pipeline(transaction=False) as pipe:
            await self._seed(pipe, key_id, (day_of(now), day_usd), (month_of(now), month_usd), now)
            await pipe.execute()
        return True

    async def _seed(
        self, pipe: Any, key_id: str, day: tuple[str, float], month: tuple[str, float], now: float
    ) -> None:
        """Raise each period's spend to at least ``usd``, for the periods that have not ended."""
        periods = ((day, day_of(now), next_day(now)), (month, month_of(now), next_month(now)))
        keys: list[str] = []
        args: list[str | int] = []
        for (period, usd), current, ends in periods:
            if period == current:
                keys.append(self._spend_key(key_id, period))
                args += [repr(usd), _ttl(ends.timestamp(), now)]
        if keys:
            await self._raise_script(keys, args, client=pipe)

    def _remember(self, key_id: str, day_usd: float, month_usd: float, now: float) -> bool:
        """Keep the spend read from Redis; True if it went down within a period (Redis lost it)."""
        day, month = day_of(now), month_of(now)
        before = self._last_spend.get(key_id)
        lost = 0.0
        if before is not None and before[2] == month:
            lost = max(before[3] - month_usd, before[1] - day_usd if before[0] == day else 0.0)
            day_usd = max(day_usd, before[1]) if before[0] == day else day_usd
            month_usd = max(month_usd, before[3])
        self._last_spend[key_id] = (day, day_usd, month, month_usd)
        return lost > 1e-9

    async def _seed_fallback(self, now: float) -> None:
        """Start the local limiter from the spend last read from Redis, for the current periods."""
        for key_id, (day, day_usd, month, month_usd) in list(self._last_spend.items()):
            if month == month_of(now):
                await self._fallback.seed_spend(key_id, day_usd if day == day_of(now) else 0.0, month_usd)

    def _windows(self, key_id: str) -> list[str]:
        """The request set, the token set and the token total of a key."""
        base = f"{self._prefix}limits:{{{key_id}}}"
        return [f"{base}:requests", f"{base}:tokens", f"{base}:tokens-total"]

    def _marker(self, key_id: str, charge_id: str) -> str:
        return f"{self._prefix}limits:{{{key_id}}}:charge:{charge_id}"

    def _reserved_keys(self, key_id: str) -> list[str]:
        """The key's running reservations and the sum of their dollars."""
        base = f"{self._prefix}limits:{{{key_id}}}"
        return [f"{base}:reserved", f"{base}:reserved-total"]

    def _budget_keys(self, key_id: str, now: float) -> list[str]:
        return [*self._windows(key_id), *self._spend_keys(key_id, now), *self._reserved_keys(key_id)]

    def _spend_keys(self, key_id: str, now: float) -> list[str]:
        return [self._spend_key(key_id, day_of(now)), self._spend_key(key_id, month_of(now))]

    def _spend_key(self, key_id: str, period: str) -> str:
        return f"{self._prefix}spend:{{{key_id}}}:{period}"


def _arg(limit: float | None) -> str:
    return "" if limit is None else repr(limit)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _member(usd: float, reservation_id: str) -> str:
    return f"{usd!r}:{reservation_id}"


def _ttl(ends: float, now: float) -> int:
    return max(1, round(ends - now + EXPIRY_MARGIN_S))
