"""Money: the one exact representation of an amount of USD in guardd.

Every amount is an ``int`` of **pico-dollars** (1 USD = 10**12 units). Integers add exactly, sum fast in SQLite
and never pass through binary floating point. Twelve decimal places hold every figure OpenRouter reports (its
usage figures carry up to ten, e.g. ``0.1015644762``); digits beyond the twelfth, which only float noise in a
client produces, are rounded half-to-even on the way in. A single amount fits SQLite's 64-bit integers up to
about $9.2 million; sums larger than that are only ever made in Python, whose ints are unbounded.

Parsing accepts ``int``, ``Decimal`` and decimal strings (``"5"``, ``"0.00123"``, ``"1e-5"``). A Python
``float`` is accepted only through its shortest ``repr`` (``0.1`` -> ``"0.1"``), which is what the number was
written as in JSON; guardd's own decoders hand Decimals, never floats, to this module.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

UNITS_PER_USD = 10**12
_QUANTUM = Decimal(1).scaleb(-12)

Money = int
"""An amount in pico-dollars. A plain ``int`` so that sums, comparisons and SQLite storage are exact and cheap."""


class MoneyError(ValueError):
    """A value that is not an amount of money (not a number, not finite, or of the wrong type)."""


def parse_money(value: object) -> Money:
    """Return ``value`` (USD as int, Decimal, decimal string or float) as pico-dollars.

    Raise :class:`MoneyError` for booleans, non-numeric strings, NaN and infinities. Negative amounts are
    returned as they are: whether a negative is allowed is the caller's decision. The integer is as large as the
    amount: a caller reading untrusted text bounds ``money_decimal(value).adjusted()`` first (``1e9999999`` is a
    ten-million-digit integer, minutes of CPU).
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value * UNITS_PER_USD
    dec = money_decimal(value)
    return int((dec * UNITS_PER_USD).to_integral_value(rounding=ROUND_HALF_EVEN))


def money_decimal(value: object) -> Decimal:
    """Return the finite Decimal :func:`parse_money` reads ``value`` as; raise MoneyError as it does."""
    if isinstance(value, bool):
        raise MoneyError(f"not an amount of money: {value!r}")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        dec = value
    elif isinstance(value, float):
        dec = Decimal(repr(value))
    elif isinstance(value, str):
        text = value.strip().removeprefix("$").replace("_", "")
        try:
            dec = Decimal(text)
        except InvalidOperation:
            raise MoneyError(f"not an amount of money: {value!r}") from None
    else:
        raise MoneyError(f"not an amount of money: {value!r}")
    if not dec.is_finite():
        raise MoneyError(f"not a finite amount: {value!r}")
    return dec


def to_decimal(amount: Money) -> Decimal:
    """Return the exact Decimal value in USD of ``amount``."""
    return (Decimal(amount) / UNITS_PER_USD).quantize(_QUANTUM)


def format_json(amount: Money, min_places: int = 2) -> str:
    """Return the exact decimal string of ``amount`` for JSON output: ``"5.00"``, ``"1.234567"``, ``"-0.50"``.

    Trailing zeros beyond ``min_places`` are dropped; no digit is ever rounded away.
    """
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), UNITS_PER_USD)
    digits = f"{frac:012d}".rstrip("0")
    if len(digits) < min_places:
        digits = digits.ljust(min_places, "0")
    return f"{sign}{whole}.{digits}" if digits else f"{sign}{whole}"


def format_human(amount: Money) -> str:
    """Return ``amount`` for people: ``$1.23``, ``$1,234.50``; amounts under a cent keep 4 significant digits
    (``$0.001235``) so that a cheap request does not read as ``$0.00``."""
    sign = "-" if amount < 0 else ""
    value = abs(amount)
    if value == 0:
        return "$0.00"
    if value >= UNITS_PER_USD // 100:  # a cent or more: round to cents
        cents = (value + UNITS_PER_USD // 200) // (UNITS_PER_USD // 100)
        return f"{sign}${cents // 100:,}.{cents % 100:02d}"
    dec = to_decimal(value).normalize()
    # four significant digits for sub-cent amounts
    exponent = dec.adjusted()
    places = min(12, 3 - exponent)
    text = f"{dec.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN):f}".rstrip("0")
    return f"{sign}${text}"


def format_perf(amount: Money) -> str:
    """Return ``amount`` for monitoring perfdata: a decimal with at most 6 places (half-even), ``"0.000123"``."""
    step = UNITS_PER_USD // 10**6
    rounded = to_decimal(amount).quantize(Decimal(1).scaleb(-6), rounding=ROUND_HALF_EVEN)
    return format_json(int(rounded * UNITS_PER_USD) // step * step, min_places=0) if amount else "0"


def percent(spent: Money, limit: Money) -> float:
    """Return ``spent`` as a percentage of ``limit``, rounded to 0.1 (a display figure, never used for money).

    A zero limit (configuration forbids it; kept total for safety) reads 0 % unused and 100 % once spent.
    """
    if limit <= 0:
        return 0.0 if spent <= 0 else 100.0
    # integer arithmetic first so that 100 % is exactly 100.0
    tenths = (spent * 1000 * 2 + limit) // (2 * limit)
    return tenths / 10


def at_percent(limit: Money, pct: float) -> Money:
    """Return ``pct`` per cent of ``limit`` in pico-dollars (thresholds such as 80 % of $5 = $4 exactly)."""
    return int((Decimal(limit) * Decimal(repr(pct)) / 100).to_integral_value(rounding=ROUND_HALF_EVEN))
