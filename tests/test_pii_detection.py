"""PII detection from a column's name and sample values: each kind of personal data, with its
reason, and no false positives on ids, prices, dates, codes or product names."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from catalog.metadata import PiiTag
from catalog.pii_detection import detect_pii, explain_pii, luhn_ok, name_words


@pytest.mark.parametrize("column, values, tag", [
    ("contact", ["maria.garcia@northwind.example", "j.smith+news@example.com", "wei@mail.example.org"], PiiTag.email),
    ("email", ["maria.garcia12@example.com", "w.li@example.net", "not given"], PiiTag.email),  # the name lowers the bar
    ("notes", ["+1 (415) 555-0134", "+44 20 7946 0958", "+49 30 1234567", "+81 3-1234-5678"], PiiTag.phone),
    ("phone", ["+34 6681 642 1081", "+1 (894) 717-2638", "+55 612 9955-7476"], PiiTag.phone),
    ("mobile", ["4155550134", "4155550135"], PiiTag.phone),       # bare digits only with a phone-like name
    ("payment", ["4111 1111 1111 1111", "5500-0000-0000-0004", "378282246310005"], PiiTag.card),
    ("ref", [4111111111111111, 5555555555554444], PiiTag.card),   # card numbers stored as integers
    ("tax_ref", ["123-45-6789", "078-05-1120", "219-09-9999"], PiiTag.national_id),
    ("ni_number", ["AB123456C", "JG 10 37 59 A"], PiiTag.national_id),
    ("ssn", ["123456789", "078051120"], PiiTag.national_id),       # undashed SSNs only under an ssn-like name
    ("client", ["192.168.1.10", "10.0.0.1", "2001:db8::1"], PiiTag.ip_address),
    ("full_name", ["Maria Garcia", "Sung-min Park", "Sean O'Brien", "Ana de la Cruz"], PiiTag.name),
    ("agentName", ["Nadia Jensen", "Lars Vogel"], PiiTag.name),
    ("name", ["Maria Garcia", "James Smith", "Wei Zhang", "Olivia Brown"], PiiTag.name),
])
def test_detects_personal_data(column, values, tag):
    finding = explain_pii(column, values)
    assert finding is not None and finding.tag == tag
    assert detect_pii(column, values) == tag


@pytest.mark.parametrize("column, values", [
    ("order_id", [1, 2, 40000, 12345678, 9999999999]),
    ("amount", [Decimal("12.34"), Decimal("1999.99")]),
    ("price", ["19.99", "100.00", "7.5"]),
    ("unit_price", [19.99, 2499.0]),
    ("ordered_at", [dt.datetime(2025, 1, 1, 10, 30), dt.datetime(2026, 3, 4)]),
    ("day", ["2025-01-01", "2025-02-01", "03/04/2025"]),
    ("created", ["2025-01-01 10:00:00", "2025-01-02 11:00:00"]),
    ("zip", ["12345", "90210", "10001"]),
    ("sku", ["SKU-12345678", "SKU-88888888"]),
    ("status", ["completed", "returned", "cancelled"]),
    ("version", ["1.2.3", "2.0.1"]),
    ("product_name", ["Onsite Installation", "Nimbus Wireless Mouse", "Aurora Headset"]),
    ("name", ["Acme Corp", "Globex Industries", "Initech Ltd"]),
    ("country", ["United States", "South Africa", "United Kingdom"]),
    ("card_id", ["4111 1111 1111 1112", "1234 5678 9012 3456"]),   # fail the Luhn check / issuer prefix
    ("tax_ref", ["000-12-3456", "666-12-3456", "123-00-4567"]),    # not valid SSNs
    ("notes", ["call me on +1 415 555 0134 please"] + ["thanks for the help"] * 9),
    ("email_verified", [True, False, True]),                      # the name says e-mail, the values do not
    ("phone_count", [1, 2, 3]),
])
def test_no_false_positives(column, values):
    assert explain_pii(column, values) is None


def test_reason_counts_the_evidence_and_names_the_column():
    finding = explain_pii("email", ["a@example.com", "b@example.com", "c@example.com", "none"])
    assert finding.reason == "3 of 4 sampled values look like e-mail addresses; the column name `email` says so too"
    finding = explain_pii("name", ["Maria Garcia", "James Smith", "Grace Murphy"])
    assert "3 start with a common given name" in finding.reason


def test_name_alone_decides_only_when_there_are_no_values():
    finding = explain_pii("customer_email", [None, ""])
    assert finding.tag == PiiTag.email and "no values to check" in finding.reason
    assert explain_pii("region", []) is None
    assert explain_pii("customer_email", ["yes", "no", "yes"]) is None


def test_personal_name_needs_a_person_not_a_thing():
    people = ["Maria Garcia", "James Smith"]
    assert detect_pii("contact_name", people) == PiiTag.name
    assert detect_pii("company_name", people) is None  # a company is named like people sometimes
    assert detect_pii("label", ["Aurora Desk", "Summit Dock"]) is None


def test_luhn_and_name_words():
    assert luhn_ok("4111111111111111") and luhn_ok("79927398713")
    assert not luhn_ok("4111111111111112")
    assert name_words("customerEmail") == ["customer", "email"]
    assert name_words("Customer E-Mail") == ["customer", "e", "mail"]
    assert detect_pii("Customer E-Mail", ["x@example.com"]) == PiiTag.email
