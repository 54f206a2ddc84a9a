"""Spot personal data in a column from its name and a sample of its values: e-mail, phone, payment
card (Luhn-checked), national ids (US SSN, UK NI number), IP address and personal names.

A finding is a proposal with its evidence; this module never reads the warehouse or changes the
catalog, and it never tags a column on its name alone when the values say otherwise.
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable

from catalog.metadata import PiiTag

# Share of sampled values that must match; lower when the column's name points the same way.
MATCH_SHARE = 0.8
MATCH_SHARE_WITH_NAME = 0.6

_EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_PHONE_CHARS = re.compile(r"\+?[\d\s().\-/]{6,24}")
# Shapes made of digits and dashes that are not phone numbers: dates and SSN-shaped codes.
_DATE_LIKE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}|\d{3}-\d{2}-\d{4}")
_DECIMAL = re.compile(r"[-+]?\d+([.,]\d+)?")
_CARD_CHARS = re.compile(r"\d{4}([ -]?\d{2,4}){2,4}|\d{13,19}")
_SSN = re.compile(r"(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}")
_SSN_PLAIN = re.compile(r"(?!000|666|9\d\d)\d{3}(?!00)\d{2}(?!0000)\d{4}")
_UK_NINO = re.compile(r"(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]")
_NAME_PARTICLES = {"van", "von", "de", "da", "del", "della", "der", "den", "di", "du", "la", "le", "bin", "al", "el", "dos"}

_NAME_HINTS: dict[PiiTag, set[str]] = {
    PiiTag.email: {"email", "mail", "emailaddress", "mailaddress"},
    PiiTag.phone: {"phone", "telephone", "tel", "mobile", "cell", "cellphone", "fax", "msisdn", "phonenumber"},
    PiiTag.card: {"card", "cardnumber", "creditcard", "cc", "pan"},
    PiiTag.national_id: {"ssn", "nino", "ni", "ninumber", "nationalid", "socialsecurity", "sin", "taxid", "nin",
                         "passport"},
    PiiTag.ip_address: {"ip", "ipaddress", "ipaddr", "ipv4", "ipv6", "clientip", "remoteaddr"},
}
# A `..._name` column names a person when its other words say who; never for things.
_PERSON_WORDS = {"first", "last", "full", "given", "family", "sur", "middle", "maiden", "customer", "client",
                 "contact", "agent", "employee", "person", "patient", "author", "manager", "member", "student",
                 "applicant", "recipient", "sender", "buyer", "seller", "owner", "driver", "guest", "passenger"}
_PERSON_NAME_WORDS = {"firstname", "lastname", "fullname", "givenname", "familyname", "surname", "forename"}
_THING_WORDS = {"product", "company", "file", "table", "column", "brand", "business", "org", "organisation",
                "organization", "team", "host", "domain", "street", "city", "country", "region", "category",
                "project", "model", "metric", "event", "app", "device", "store", "shop", "item", "account"}
# Common given names across regions: a bare `name` column is personal when most values start with one.
_GIVEN_NAMES = {n.lower() for n in (
    "Aaron Adam Ahmed Aisha Alex Alexander Ali Alice Amara Amelia Amir Ana Andre Andrea Andrew Anika Anna Anne "
    "Arjun Ava Beatriz Ben Benjamin Carlos Camila Carmen Charlotte Chen Chiara Chloe Chris Christian Clara Daniel "
    "David Diego Elena Elif Elizabeth Emily Emma Erik Ethan Fatima Felix Freya Gabriel Grace Hannah Hans Henrik "
    "Hiroshi Ines Ingrid Isabella Jack Jakob James Jan Jane Javier Jennifer Jessica John Jonas Jose Joseph Juan "
    "Julia Karen Keiko Kenji Kevin Kwame Lars Laura Leila Lena Liam Lina Linda Lisa Lucas Lucia Luis Maria Marco "
    "Mark Mary Mateo Matthew Maya Mei Michael Mohammed Muhammad Nadia Noah Nora Olivia Omar Oscar Patricia Patrick "
    "Paul Pedro Peter Priya Rafael Rahul Ravi Robert Ruth Samuel Sara Sarah Simone Sofia Sophie Sung-min Susan "
    "Tanvi Thomas Tomas Valentina Victor Wei William Yuki Zara"
).split()}


@dataclass(frozen=True)
class PiiFinding:
    """A proposed tag and the evidence for it, in words a reviewer can check."""
    tag: PiiTag
    reason: str


def name_words(column_name: str) -> list[str]:
    """`customerEmail`, `customer_email`, `Customer Email` -> ['customer', 'email']."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", column_name)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


def _hinted(column_name: str) -> set[PiiTag]:
    words = name_words(column_name)
    joined = "".join(words)
    tags = {tag for tag, hints in _NAME_HINTS.items() if hints & set(words) or joined in hints}
    if "e" in words and "mail" in words:
        tags.add(PiiTag.email)
    if _is_person_name_column(words):
        tags.add(PiiTag.name)
    return tags


def _is_person_name_column(words: list[str]) -> bool:
    if _THING_WORDS & set(words):
        return False
    if _PERSON_NAME_WORDS & set(words) or "".join(words) in _PERSON_NAME_WORDS:
        return True
    return "name" in words and bool(_PERSON_WORDS & set(words))


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_issuer(digits: str) -> bool:
    """Starts like a card of a real scheme (Visa, Mastercard, Amex, Discover, JCB, Diners)."""
    two, four = int(digits[:2]), int(digits[:4])
    return (digits[0] == "4" or 51 <= two <= 55 or 2221 <= four <= 2720 or two in (34, 37, 36, 38, 30, 35)
            or digits.startswith("6011") or two == 65 or 644 <= int(digits[:3]) <= 649)


def _is_email(v: Any, hinted: bool) -> bool:
    return isinstance(v, str) and _EMAIL.fullmatch(v.strip()) is not None


def _is_card(v: Any, hinted: bool) -> bool:
    if isinstance(v, bool):
        return False
    text = str(v).strip() if isinstance(v, (str, int)) else ""
    if not _CARD_CHARS.fullmatch(text):
        return False
    digits = re.sub(r"\D", "", text)
    return 13 <= len(digits) <= 19 and _card_issuer(digits) and luhn_ok(digits)


def _is_national_id(v: Any, hinted: bool) -> bool:
    if not isinstance(v, str):
        return hinted and isinstance(v, int) and not isinstance(v, bool) and _SSN_PLAIN.fullmatch(f"{v:09d}") is not None
    text = v.strip().upper()
    if _SSN.fullmatch(text) or _UK_NINO.fullmatch(text):
        return True
    return hinted and _SSN_PLAIN.fullmatch(text) is not None


def _is_ip(v: Any, hinted: bool) -> bool:
    if not isinstance(v, str) or not ("." in v or ":" in v):
        return False
    try:
        ipaddress.ip_address(v.strip())
    except ValueError:
        return False
    return True


def _is_phone(v: Any, hinted: bool) -> bool:
    if isinstance(v, int) and not isinstance(v, bool):
        return hinted and 7 <= len(str(abs(v))) <= 15
    if not isinstance(v, str):
        return False
    text = v.strip()
    if not _PHONE_CHARS.fullmatch(text) or _DATE_LIKE.fullmatch(text) or _DECIMAL.fullmatch(text):
        return hinted and text.isdigit() and 7 <= len(text) <= 15
    digits = sum(ch.isdigit() for ch in text)
    return 7 <= digits <= 15 and (text.startswith("+") or any(ch in text for ch in " ()-./"))


def _is_person_name(v: Any, hinted: bool) -> bool:
    if not isinstance(v, str):
        return False
    words = v.split()
    if not 1 <= len(words) <= 5 or (len(words) == 1 and not hinted):
        return False
    for w in words:
        if w.lower() in _NAME_PARTICLES:
            continue
        if not (w[0].isupper() and all(ch.isalpha() or ch in "-'’." for ch in w)):
            return False
    return True


def _starts_with_given_name(v: Any) -> bool:
    return isinstance(v, str) and bool(v.split()) and v.split()[0].lower() in _GIVEN_NAMES


_CHECKS: list[tuple[PiiTag, Callable[[Any, bool], bool], str]] = [
    (PiiTag.email, _is_email, "e-mail addresses"),
    (PiiTag.card, _is_card, "payment card numbers (Luhn check passed)"),
    (PiiTag.national_id, _is_national_id, "national id numbers (US SSN or UK NI number)"),
    (PiiTag.ip_address, _is_ip, "IP addresses"),
    (PiiTag.phone, _is_phone, "phone numbers"),
    (PiiTag.name, _is_person_name, "personal names"),
]


def explain_pii(column_name: str, sample_values: Sequence[Any]) -> PiiFinding | None:
    """The personal-data tag a column should carry, with the evidence; None when nothing points to one."""
    hints = _hinted(column_name)
    values = [v for v in sample_values if v is not None and not (isinstance(v, str) and not v.strip())]
    if not values:
        # Nothing to check against: only a column name that says it outright is enough.
        strong = sorted(h.value for h in hints)
        if strong:
            return PiiFinding(PiiTag(strong[0]), f"the column name `{column_name}` suggests {strong[0]} "
                                                 "(no values to check)")
        return None
    for tag, check, what in _CHECKS:
        hinted = tag in hints
        hits = sum(1 for v in values if check(v, hinted))
        share = hits / len(values)
        if share < (MATCH_SHARE_WITH_NAME if hinted else MATCH_SHARE):
            continue
        if tag is PiiTag.name and _THING_WORDS & set(name_words(column_name)):
            continue  # `company_name`, `product_name`: named like people at times, never people
        if tag is PiiTag.name and not hinted:
            # Capitalised words are also products, cities and companies: ask for known given names too.
            given = sum(1 for v in values if _starts_with_given_name(v))
            if given / len(values) < 0.5:
                continue
            reason = (f"{hits} of {len(values)} sampled values look like personal names and "
                      f"{given} start with a common given name")
        else:
            reason = f"{hits} of {len(values)} sampled values look like {what}"
        if hinted:
            reason += f"; the column name `{column_name}` says so too"
        return PiiFinding(tag, reason)
    return None


def detect_pii(column_name: str, sample_values: Sequence[Any]) -> PiiTag | None:
    """The personal-data tag for a column, or None; see `explain_pii` for the evidence."""
    finding = explain_pii(column_name, sample_values)
    return finding.tag if finding else None
