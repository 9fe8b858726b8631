"""Money as integer minor units plus an ISO 4217 currency code. Never a float."""

from __future__ import annotations

from dataclasses import dataclass

# ISO 4217 active codes and their minor-unit exponents. Codes not listed here are
# refused: a typo in a currency is an error, not a new currency.
_EXPONENT_0 = frozenset(
    "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split()
)
_EXPONENT_3 = frozenset("BHD IQD JOD KWD LYD OMR TND".split())
_EXPONENT_4 = frozenset("CLF UYW".split())
_EXPONENT_2 = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD
    BTN BWP BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN
    ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES
    KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK
    MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR
    SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD
    TZS UAH USD USN UZS VED VES WST XCD XCG YER ZAR ZMW ZWG""".split()
)

CURRENCY_EXPONENTS: dict[str, int] = {
    **dict.fromkeys(_EXPONENT_2, 2),
    **dict.fromkeys(_EXPONENT_0, 0),
    **dict.fromkeys(_EXPONENT_3, 3),
    **dict.fromkeys(_EXPONENT_4, 4),
}


class MoneyError(ValueError):
    """A money value that cannot exist: the field and the rule it breaks."""

    def __init__(self, field: str, rule: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.rule = rule


def check_currency(code: object) -> str:
    if not isinstance(code, str) or code not in CURRENCY_EXPONENTS:
        raise MoneyError(
            "currency", "iso_4217", f"currency must be an ISO 4217 code such as USD, not {code!r}"
        )
    return code


@dataclass(frozen=True, slots=True)
class Money:
    amount: int
    currency: str

    def __post_init__(self) -> None:
        # bool is an int subclass; True dollars is not money.
        if not isinstance(self.amount, int) or isinstance(self.amount, bool):
            raise MoneyError(
                "amount",
                "integer_minor_units",
                f"amount must be an integer number of minor units, not {self.amount!r}",
            )
        check_currency(self.currency)

    @property
    def exponent(self) -> int:
        return CURRENCY_EXPONENTS[self.currency]

    @classmethod
    def of_major(cls, major_units: int, currency: str) -> Money:
        """A whole number of major units (e.g. 30 USD) in minor units."""
        return cls(major_units * 10 ** CURRENCY_EXPONENTS[check_currency(currency)], currency)

    def to_dict(self) -> dict[str, int | str]:
        return {"amount": self.amount, "currency": self.currency}

    def __str__(self) -> str:
        if self.exponent == 0:
            return f"{self.amount} {self.currency}"
        sign = "-" if self.amount < 0 else ""
        whole, frac = divmod(abs(self.amount), 10**self.exponent)
        return f"{sign}{whole}.{frac:0{self.exponent}d} {self.currency}"
