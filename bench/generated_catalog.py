"""A large, realistic business catalog from word pools (fixed seed), with search queries of known answers.

Tables are named like a warehouse's (`fct_finance_refund_daily_emea`), described in prose, with columns,
PII tags, owners, tags and a glossary of synonyms. Queries paraphrase a description (other words, other
order, glossary synonyms), never quote a name. For benchmarks and tests only; it never touches a workspace.
"""
from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from pathlib import Path

from catalog.metadata import Column, GlossaryTerm, Owner, PiiTag, Table
from core.yaml_files import dump_yaml

# ---- word pools: (word as written in names and descriptions, other ways a person says it) -------------

LAYERS = {"fct": "Fact table", "dim": "Dimension table", "stg": "Staging copy", "agg": "Aggregate",
          "snap": "Snapshot", "rpt": "Reporting view"}
DOMAINS = ["finance", "sales", "marketing", "support", "logistics", "hr", "product", "inventory", "billing",
           "risk", "procurement", "growth", "web", "mobile", "partner", "compliance"]
# entity: (what one row is about, glossary synonyms)
ENTITIES: dict[str, tuple[str, list[str]]] = {
    "customer": ("customer accounts and their profile", ["client", "buyer", "patron"]),
    "order": ("order placed through the checkout", ["purchase", "basket"]),
    "invoice": ("invoice issued for billed goods", ["bill", "statement"]),
    "payment": ("payment received by card or transfer", ["remittance", "settlement"]),
    "refund": ("refund paid back after a complaint", ["reimbursement", "chargeback"]),
    "shipment": ("shipment handed to a carrier", ["delivery", "consignment"]),
    "subscription": ("subscription plan with recurring charges", ["membership", "recurring plan"]),
    "campaign": ("marketing campaign and its spend", ["promotion", "ad push"]),
    "lead": ("lead captured by a form or event", ["prospect", "inquiry"]),
    "ticket": ("ticket opened by the helpdesk", ["support case", "complaint"]),
    "employee": ("employee on the payroll", ["staff", "worker", "headcount"]),
    "supplier": ("supplier we buy stock from", ["vendor", "manufacturer"]),
    "product": ("product listed in the assortment", ["item", "sku", "article"]),
    "warehouse": ("warehouse location holding stock", ["depot", "fulfilment centre"]),
    "return": ("return of goods sent back", ["rma", "sent back goods"]),
    "contract": ("contract signed with a partner", ["agreement", "deal paper"]),
    "session": ("session on the site or app", ["visit", "browsing session"]),
    "claim": ("claim filed under a warranty", ["warranty claim", "damage report"]),
    "coupon": ("coupon redeemed at checkout", ["voucher", "discount code"]),
    "opportunity": ("opportunity in the sales pipeline", ["deal", "pipeline deal"]),
    "appointment": ("appointment booked by a patron", ["booking", "reservation"]),
    "budget": ("budget line approved for a cost centre", ["allocation", "spending plan"]),
    "forecast": ("forecast of expected demand", ["projection", "prediction"]),
    "review": ("review written by a shopper", ["rating", "feedback"]),
}
# grain: (how the description says it, how a person asks for it)
GRAINS: dict[str, tuple[str, list[str]]] = {
    "daily": ("daily", ["per day", "each day", "day by day"]),
    "weekly": ("weekly", ["per week", "each week"]),
    "monthly": ("monthly", ["per month", "each month", "month by month"]),
    "quarterly": ("quarterly", ["per quarter", "each quarter"]),
    "hourly": ("hourly", ["per hour", "every hour"]),
    "history": ("full change history", ["every past change", "change log over time"]),
    "current": ("current state", ["latest state", "as of now"]),
    "events": ("raw event stream", ["each event as it happened", "event log"]),
}
# region: (as written, glossary synonyms)
REGIONS: dict[str, list[str]] = {
    "emea": ["europe middle east africa"], "apac": ["asia pacific"], "latam": ["latin america"],
    "nam": ["north america"], "dach": ["germany austria switzerland"], "nordics": ["scandinavia"],
    "uk": ["united kingdom", "britain"], "france": ["french market"], "iberia": ["spain portugal"],
    "benelux": ["belgium netherlands luxembourg"], "anz": ["australia new zealand"], "global": ["worldwide"],
}
SEGMENTS: dict[str, list[str]] = {
    "enterprise": ["large corporate"], "smb": ["small business"], "consumer": ["retail shopper"],
    "wholesale": ["bulk reseller"], "public sector": ["government"], "midmarket": ["mid sized company"],
}
SOURCES = ["Salesforce", "SAP", "Stripe", "Zendesk", "Shopify", "NetSuite", "Workday", "HubSpot", "Segment",
           "Snowflake share", "Oracle", "Adyen"]
FILLERS = ["", "", "where is", "find the", "show me", "which table has", "I need", "looking for", "data about"]

# column attributes: (name, description with {e} for the entity, paraphrase with {e}, pii)
ATTRIBUTES: list[tuple[str, str, str, PiiTag | None]] = [
    ("created_at", "Timestamp when the {e} record was created", "moment the {e} was first recorded", None),
    ("updated_at", "Timestamp of the last change to the {e}", "last modification time {e}", None),
    ("status", "Lifecycle status of the {e}: open, pending or closed", "{e} lifecycle open pending closed", None),
    ("net_amount", "Net amount of the {e} in euros after tax", "{e} value net tax euros", None),
    ("gross_amount", "Gross amount of the {e} in euros before tax", "{e} value gross before tax", None),
    ("tax_amount", "Tax charged on the {e} in euros", "tax charged {e}", None),
    ("currency_code", "ISO currency code of the {e} amounts", "{e} currency iso code", None),
    ("discount_rate", "Share of list price given as discount on the {e}", "{e} discount share list price", None),
    ("quantity", "Number of units in the {e}", "units count {e}", None),
    ("channel", "Sales channel through which the {e} came: web, store or phone", "{e} came via web store phone", None),
    ("country_code", "Two-letter country code of the {e}", "{e} two letter country", None),
    ("region_name", "Commercial region responsible for the {e}", "{e} commercial region responsible", None),
    ("owner_email", "Email address of the person responsible for the {e}", "email responsible person {e}",
     PiiTag.email),
    ("contact_phone", "Phone number to call about the {e}", "phone number call {e}", PiiTag.phone),
    ("contact_name", "Full name of the contact person for the {e}", "contact person full name {e}", PiiTag.name),
    ("billing_address", "Postal address used to bill the {e}", "postal billing address {e}", PiiTag.address),
    ("ip_address", "IP address from which the {e} was submitted", "{e} submitted ip", PiiTag.ip_address),
    ("birth_date", "Date of birth of the person behind the {e}", "{e} person date birth", PiiTag.date_of_birth),
    ("card_last4", "Last four digits of the card used for the {e}", "{e} card last four digits", PiiTag.card),
    ("is_deleted", "True when the {e} was soft-deleted", "{e} soft deleted flag", None),
    ("priority", "Urgency of the {e}: low, normal or high", "{e} urgency low normal high", None),
    ("score", "Model score estimating the {e} quality from 0 to 100", "{e} quality model score", None),
    ("margin_pct", "Gross margin of the {e} as a percentage", "{e} gross margin percentage", None),
    ("cost_center", "Cost centre that pays for the {e}", "cost centre paying {e}", None),
    ("sla_hours", "Hours allowed by the service level to resolve the {e}", "service level hours resolve {e}", None),
    ("lifetime_value", "Expected lifetime value of the {e} in euros", "{e} expected lifetime value euros", None),
    ("churn_risk", "Probability that the {e} is lost within 90 days", "{e} probability lost 90 days", None),
    ("source_system", "System of record the {e} was loaded from", "{e} system record loaded", None),
    ("external_ref", "Identifier of the {e} in the partner's system", "{e} partner system identifier", None),
    ("approved_by", "Employee who approved the {e}", "{e} approval employee", None),
    ("approved_at", "Timestamp when the {e} was approved", "{e} approval timestamp", None),
    ("cancel_reason", "Free-text reason given when the {e} was cancelled", "{e} cancellation free text reason", None),
    ("weight_kg", "Weight of the {e} in kilograms", "{e} kilograms weight", None),
    ("duration_min", "Duration of the {e} in minutes", "{e} minutes duration", None),
    ("nps_score", "Net promoter score given for the {e}", "{e} net promoter", None),
    ("language", "Language the {e} was written in", "{e} written language", None),
    ("utm_source", "Marketing source tag that brought the {e}", "{e} marketing source tag", None),
    ("fx_rate", "Exchange rate to euros applied to the {e}", "{e} exchange rate euros applied", None),
    ("due_date", "Date by which the {e} must be settled", "{e} settled by date", None),
    ("batch_id", "Identifier of the load batch that brought the {e}", "{e} load batch identifier", None),
]
OWNER_NAMES = ["amara", "bjorn", "chen", "dalia", "emeka", "farah", "goran", "hana", "ivan", "jules", "kenji",
               "leila", "mateo", "nadia", "oskar", "priya", "quentin", "rosa", "sven", "tariq", "uma", "viktor",
               "wen", "ximena", "yusuf", "zofia"]
TAGS = ["gold", "silver", "bronze", "certified", "deprecated", "sensitive", "daily load", "finance reviewed"]


@dataclass
class Query:
    text: str
    kind: str  # table or column
    table: str
    name: str  # the table's or the column's name


@dataclass
class GeneratedCatalog:
    tables: list[Table] = field(default_factory=list)
    glossary: list[GlossaryTerm] = field(default_factory=list)
    owners: list[Owner] = field(default_factory=list)
    queries: list[Query] = field(default_factory=list)

    @property
    def column_count(self) -> int:
        return sum(len(t.columns) for t in self.tables)

    def write_import_files(self, out: Path, tables_per_file: int = 250) -> list[Path]:
        """Lathe's import format: files with `tables:` lists, plus one file with `glossary:` and `owners:`."""
        out.mkdir(parents=True, exist_ok=True)
        files = []
        for n, start in enumerate(range(0, len(self.tables), tables_per_file)):
            p = out / f"tables_{n:03d}.yml"
            p.write_text(dump_yaml({"tables": [_dump(t) for t in self.tables[start:start + tables_per_file]]}),
                         encoding="utf-8")
            files.append(p)
        p = out / "business_terms.yml"
        p.write_text(dump_yaml({"glossary": [_dump(g) for g in self.glossary],
                                "owners": [_dump(o) for o in self.owners]}), encoding="utf-8")
        return files + [p]


def _dump(model) -> dict:
    return model.model_dump(mode="json", exclude_none=True, exclude_defaults=True)


@dataclass(frozen=True)
class _Shape:
    layer: str
    domain: str
    entity: str
    grain: str
    region: str
    segment: str
    source: str


def _glossary(owners: list[Owner]) -> list[GlossaryTerm]:
    terms = [GlossaryTerm(name=e, definition=f"One {about}.", synonyms=syn, owner=owners[i % len(owners)].name)
             for i, (e, (about, syn)) in enumerate(ENTITIES.items())]
    terms += [GlossaryTerm(name=r, definition=f"The {syn[0]} sales region.", synonyms=syn) for r, syn in REGIONS.items()]
    terms += [GlossaryTerm(name=s, definition=f"Customers of the {s} segment ({syn[0]}).", synonyms=syn)
              for s, syn in SEGMENTS.items()]
    return terms


def _table(rng: random.Random, s: _Shape, owners: list[Owner], columns_per_table: int) -> Table:
    name = f"{s.layer}_{s.domain}_{s.entity}_{s.grain}_{s.region}"
    about, _ = ENTITIES[s.entity]
    grain_words, _ = GRAINS[s.grain]
    description = (f"{LAYERS[s.layer]} with a {grain_words} view of each {about}, for {s.segment} customers in "
                   f"{s.region.upper() if len(s.region) <= 4 else s.region.title()}, loaded from {s.source} "
                   f"for the {s.domain} team.")
    attrs = rng.sample(ATTRIBUTES, k=min(columns_per_table - 1, len(ATTRIBUTES)))
    cols = [Column(name=f"{s.entity}_id", type="BIGINT", description=f"Unique identifier of the {s.entity}")]
    for attr_name, desc, _, pii in attrs:
        cols.append(Column(name=attr_name, type="VARCHAR", description=desc.format(e=s.entity), pii=pii))
    while len(cols) < columns_per_table:  # more columns than the pool: numbered measures
        i = len(cols)
        cols.append(Column(name=f"metric_{i:02d}", type="DOUBLE",
                           description=f"Numeric measure {i} of the {s.entity}"))
    owner = owners[DOMAINS.index(s.domain) % len(owners)]
    return Table(name=name, description=description, owner=owner.name,
                 tags=[s.domain, rng.choice(TAGS)], columns=cols)


def _say(rng: random.Random, word: str, synonyms: list[str], p_synonym: float) -> str:
    return rng.choice(synonyms) if synonyms and rng.random() < p_synonym else word


def _table_query(rng: random.Random, s: _Shape, t: Table) -> Query:
    _, entity_syn = ENTITIES[s.entity]
    parts = [_say(rng, s.entity, entity_syn, 0.5),
             rng.choice(GRAINS[s.grain][1]) if rng.random() < 0.5 else s.grain,
             _say(rng, s.region, REGIONS[s.region], 0.5),
             _say(rng, s.segment, SEGMENTS[s.segment], 0.4),
             s.domain]
    if rng.random() < 0.6:
        parts.append(f"from {s.source}")
    rng.shuffle(parts)
    return Query(" ".join(x for x in [rng.choice(FILLERS), *parts] if x), "table", t.name, t.name)


def _column_query(rng: random.Random, s: _Shape, t: Table) -> Query:
    col = rng.choice(t.columns[1:])
    paraphrase = next(p for n, _, p, _ in ATTRIBUTES if n == col.name)
    _, entity_syn = ENTITIES[s.entity]
    # The table is named the way a person would: its subject, region, grain and team.
    parts = [paraphrase.format(e=_say(rng, s.entity, entity_syn, 0.4)),
             _say(rng, s.region, REGIONS[s.region], 0.4), s.grain, s.domain, s.layer]
    rng.shuffle(parts)
    return Query(" ".join(parts), "column", t.name, col.name)


def generate(tables: int = 10_000, columns_per_table: int = 20, queries: int = 100, seed: int = 7) -> GeneratedCatalog:
    rng = random.Random(seed)
    owners = [Owner(name=n, team=DOMAINS[i % len(DOMAINS)], email=f"{n}@example.com")
              for i, n in enumerate(OWNER_NAMES)]
    space = list(itertools.product(LAYERS, DOMAINS, ENTITIES, GRAINS, REGIONS))
    if tables > len(space):
        raise ValueError(f"at most {len(space)} distinct tables can be generated, not {tables}")
    shapes = [_Shape(*combo, segment=rng.choice(list(SEGMENTS)), source=rng.choice(SOURCES))
              for combo in rng.sample(space, tables)]
    cat = GeneratedCatalog(owners=owners, glossary=_glossary(owners))
    cat.tables = [_table(rng, s, owners, columns_per_table) for s in shapes]
    picks = rng.sample(range(tables), min(queries, tables))
    for n, i in enumerate(picks):
        make = _table_query if n % 2 == 0 else _column_query
        cat.queries.append(make(rng, shapes[i], cat.tables[i]))
    return cat
