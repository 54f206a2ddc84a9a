"""The demo company's business metadata: what each table and column means, who owns it, the glossary.

Pure data as catalog models; column types and statistics come from the warehouse when the demo is
installed. It must describe every column the generator makes and never hold data values.
"""
from __future__ import annotations

from catalog.metadata import Column, GlossaryTerm, Owner, PiiTag, Table

OWNERS: tuple[Owner, ...] = (
    Owner(name="sales-analytics", team="Sales Analytics", email="sales-analytics@demo-company.example",
          description="Orders, revenue and customer reporting."),
    Owner(name="customer-success", team="Customer Success", email="customer-success@demo-company.example",
          description="Customer records, segments and account management."),
    Owner(name="product-management", team="Product Management", email="product@demo-company.example",
          description="The product catalogue and prices."),
    Owner(name="support-operations", team="Support Operations", email="support-ops@demo-company.example",
          description="Support tickets, agents, replies and service levels."),
    Owner(name="ml-platform", team="ML Platform", email="ml-platform@demo-company.example",
          description="Training data sets derived from operational data."),
)

# (name, description, pii, synonyms) per column.
_Col = tuple[str, str, PiiTag | None, tuple[str, ...]]


def _table(name: str, description: str, owner: str, primary_key: str, tags: tuple[str, ...],
           synonyms: tuple[str, ...], columns: list[_Col]) -> Table:
    return Table(name=name, description=description, owner=owner, source="demo", primary_key=[primary_key],
                 tags=list(tags), synonyms=list(synonyms),
                 columns=[Column(name=c, description=d, pii=p, synonyms=list(s)) for c, d, p, s in columns])


TABLES: tuple[Table, ...] = (
    _table("customers", "Every customer of the company, one row each, with contact details, region and segment.",
           "customer-success", "customer_id", ("dimension", "pii"), ("clients", "accounts", "buyers"), [
               ("customer_id", "Unique id of the customer; ids follow signup order.", None, ()),
               ("full_name", "The customer's contact person, first and last name.", PiiTag.name, ("name", "contact")),
               ("email", "Contact e-mail address.", PiiTag.email, ("e-mail", "mail")),
               ("phone", "Contact phone number in international format.", PiiTag.phone, ("telephone", "mobile")),
               ("region", "Sales region: EMEA, NA, APAC or LATAM.", None, ("territory", "geo")),
               ("country", "Country of the customer's billing address (always inside its region).", None, ("nation",)),
               ("segment", "Customer tier: enterprise, mid-market, smb (small business) or consumer.", None,
                ("tier", "customer type")),
               ("signup_date", "Day the customer created their account.", None, ("joined", "registration date")),
           ]),
    _table("products", "The product catalogue: hardware, software, accessories, services and subscriptions.",
           "product-management", "product_id", ("dimension",), ("catalogue", "items", "SKUs"), [
               ("product_id", "Unique id of the product; low ids are the long-standing best sellers.", None, ("sku",)),
               ("product_name", "Name shown in the shop.", None, ("product",)),
               ("category", "Product category: hardware, software, accessories, services or subscriptions.", None,
                ("product line",)),
               ("unit_price", "Current list price per unit, in USD.", None, ("list price", "price")),
               ("launched_on", "Day the product went on sale.", None, ("launch date", "release date")),
           ]),
    _table("orders", "One row per order placed, with its status and the channel it came through.",
           "sales-analytics", "order_id", ("fact", "sales"), ("purchases", "sales orders"), [
               ("order_id", "Unique id of the order; ids follow order time.", None, ("order number",)),
               ("customer_id", "The customer who placed the order (customers.customer_id).", None, ()),
               ("ordered_at", "When the order was placed.", None, ("order date", "purchase date")),
               ("status", "completed, returned (sent back after delivery) or cancelled (before shipping).", None,
                ("order status",)),
               ("channel", "Where the order came from: web, mobile app, store or partner (resellers).", None,
                ("sales channel",)),
           ]),
    _table("order_items", "One row per order line: which product, how many, at what price and discount.",
           "sales-analytics", "order_item_id", ("fact", "sales"), ("order lines", "line items", "basket"), [
               ("order_item_id", "Unique id of the order line.", None, ()),
               ("order_id", "The order this line belongs to (orders.order_id).", None, ()),
               ("customer_id", "The ordering customer, copied from the order for convenience.", None, ()),
               ("product_id", "The product sold (products.product_id).", None, ()),
               ("ordered_at", "When the order was placed, copied from the order.", None, ("order date",)),
               ("quantity", "Units of the product on this line.", None, ("units", "qty")),
               ("unit_price", "List price per unit at the time of the order, in USD.", None, ("price",)),
               ("discount", "Discount rate on this line, from 0.00 (none) to 0.25.", None, ("rebate",)),
               ("amount", "Line revenue in USD: round(quantity * unit_price * (1 - discount), 2).", None,
                ("sales", "line total", "revenue")),
           ]),
    _table("support_agents", "The support team: one row per agent, with their team.",
           "support-operations", "agent_id", ("dimension", "pii"), ("agents", "support staff"), [
               ("agent_id", "Unique id of the agent.", None, ()),
               ("agent_name", "The agent's first and last name.", PiiTag.name, ("name",)),
               ("team", "tier1 (first line), tier2 (escalations and urgent cases) or billing.", None, ("queue",)),
               ("hired_on", "Day the agent joined the company.", None, ("hire date",)),
           ]),
    _table("support_tickets", "Every support ticket: who opened it, about which order, its text, priority, "
           "resolution time and satisfaction score.", "support-operations", "ticket_id", ("fact", "support", "text"),
           ("tickets", "cases", "support requests", "complaints"), [
               ("ticket_id", "Unique id of the ticket.", None, ("case number",)),
               ("customer_id", "The customer who opened the ticket (customers.customer_id).", None, ()),
               ("order_id", "The order the ticket is about; empty for account and general billing questions.", None, ()),
               ("agent_id", "The agent who owns the ticket (support_agents.agent_id).", None, ()),
               ("opened_at", "When the customer opened the ticket.", None, ("created at",)),
               ("resolved_at", "When the ticket was resolved; empty while it is open.", None, ("closed at",)),
               ("subject", "Subject line of the customer's message.", None, ("title",)),
               ("body", "The customer's message, as written.", None, ("message", "text", "complaint")),
               ("category", "What the ticket is about: billing, shipping, product, account or returns.", None,
                ("topic", "reason")),
               ("priority", "low, medium, high or urgent; sets the target resolution time.", None, ("severity",)),
               ("status", "open, resolved (answered) or closed (resolved and confirmed).", None, ("ticket status",)),
               ("resolution", "The agent's summary of how the ticket was resolved; empty while open.", None, ("outcome",)),
               ("csat", "Customer satisfaction score from the follow-up survey, 1 (bad) to 5 (great); empty when "
                "the customer did not answer or the ticket is open.", None, ("satisfaction", "CSAT score")),
               ("resolution_hours", "Hours from opening to resolution; empty while open.", None,
                ("time to resolve", "TTR")),
           ]),
    _table("ticket_replies", "Agent replies to tickets (one or two per ticket) with a quality review score.",
           "support-operations", "reply_id", ("fact", "support", "text"), ("replies", "responses", "answers"), [
               ("reply_id", "Unique id of the reply.", None, ()),
               ("ticket_id", "The ticket answered (support_tickets.ticket_id).", None, ()),
               ("agent_id", "The agent who wrote the reply; a second reply may come from tier 2 after an escalation.",
                None, ()),
               ("replied_at", "When the reply was sent.", None, ()),
               ("body", "The reply as sent to the customer.", None, ("message", "text")),
               ("quality_score", "Quality review of the reply, 1 (poor) to 5 (excellent): specific, polite and "
                "solving the problem scores high.", None, ("reply quality",)),
           ]),
    _table("reply_preferences", "Preference pairs for training a support assistant (DPO): for one ticket each, "
           "a better and a worse agent reply.", "ml-platform", "pair_id", ("training-data", "text"),
           ("preference pairs", "DPO data"), [
               ("pair_id", "Unique id of the pair.", None, ()),
               ("ticket_id", "The ticket the pair is drawn from (support_tickets.ticket_id).", None, ()),
               ("prompt", "The customer's message (the ticket body).", None, ("question",)),
               ("chosen", "The better reply: specific, polite and solving the problem.", None, ("preferred",)),
               ("rejected", "The worse reply to the same message: vague, curt or wrong.", None, ("dispreferred",)),
           ]),
)

GLOSSARY: tuple[GlossaryTerm, ...] = (
    GlossaryTerm(name="revenue", definition="Sales after discounts: the sum of order line amounts "
                 "(quantity x unit price x (1 - discount)), counted when the order is placed.",
                 synonyms=["sales", "turnover", "gross sales", "income"], owner="sales-analytics",
                 related=["order_items.amount", "metric:revenue"]),
    GlossaryTerm(name="average order value", definition="Revenue divided by the number of orders.",
                 synonyms=["AOV", "basket size", "average basket"], owner="sales-analytics",
                 related=["metric:average_order_value"]),
    GlossaryTerm(name="order", definition="One purchase by a customer, with one or more order lines.",
                 synonyms=["purchase", "sale"], owner="sales-analytics", related=["orders", "metric:orders"]),
    GlossaryTerm(name="return rate", definition="Share of orders sent back after delivery (status `returned`).",
                 synonyms=["returns rate", "share of returns"], owner="sales-analytics",
                 related=["orders.status", "metric:return_rate", "metric:returned_orders"]),
    GlossaryTerm(name="cancellation", definition="An order cancelled before it shipped (status `cancelled`).",
                 synonyms=["cancelled order"], owner="sales-analytics", related=["orders.status"]),
    GlossaryTerm(name="units sold", definition="Number of product units on order lines.",
                 synonyms=["quantity", "volume"], owner="sales-analytics",
                 related=["order_items.quantity", "metric:units_sold"]),
    GlossaryTerm(name="new customer", definition="A customer counted in the period in which they signed up.",
                 synonyms=["signups", "acquisitions"], owner="customer-success",
                 related=["customers.signup_date", "metric:new_customers"]),
    GlossaryTerm(name="active customer", definition="A customer with at least one order in the period.",
                 synonyms=["buying customer", "customers with orders"], owner="customer-success",
                 related=["metric:customers_with_orders"]),
    GlossaryTerm(name="region", definition="Sales region of a customer: EMEA, NA, APAC or LATAM.",
                 synonyms=["territory", "geo", "geography"], owner="customer-success", related=["customers.region"]),
    GlossaryTerm(name="segment", definition="Customer tier by size: enterprise, mid-market, smb or consumer.",
                 synonyms=["tier", "customer type", "customer segment"], owner="customer-success",
                 related=["customers.segment"]),
    GlossaryTerm(name="enterprise customer", definition="A customer in the `enterprise` segment: large "
                 "organisations with negotiated discounts and large baskets.",
                 synonyms=["enterprise account", "large account", "key account"], owner="customer-success",
                 related=["customers.segment"]),
    GlossaryTerm(name="SMB", definition="Small and medium-sized business customers (segment `smb`).",
                 synonyms=["small business"], owner="customer-success", related=["customers.segment"]),
    GlossaryTerm(name="sales channel", definition="Where an order came from: web shop, mobile app, store or "
                 "partner resellers.", synonyms=["channel"], owner="sales-analytics", related=["orders.channel"]),
    GlossaryTerm(name="product category", definition="hardware, software, accessories, services or subscriptions.",
                 synonyms=["category", "product line"], owner="product-management", related=["products.category"]),
    GlossaryTerm(name="ticket volume", definition="Number of support tickets opened in the period.",
                 synonyms=["tickets", "case volume", "contact volume"], owner="support-operations",
                 related=["support_tickets", "metric:ticket_volume"]),
    GlossaryTerm(name="resolution time", definition="Hours from a ticket's opening to its resolution; open "
                 "tickets are left out.", synonyms=["time to resolve", "TTR", "time to resolution"],
                 owner="support-operations",
                 related=["support_tickets.resolution_hours", "metric:resolution_time", "metric:median_resolution_time"]),
    GlossaryTerm(name="CSAT", definition="Customer satisfaction score: the 1-5 answer to the survey sent after a "
                 "ticket is resolved, averaged.", synonyms=["satisfaction", "customer satisfaction"],
                 owner="support-operations", related=["support_tickets.csat", "metric:csat"]),
    GlossaryTerm(name="resolution rate", definition="Share of opened tickets that are resolved or closed.",
                 synonyms=["solve rate"], owner="support-operations", related=["metric:resolution_rate"]),
    GlossaryTerm(name="ticket priority", definition="low, medium, high or urgent; the target resolution time is "
                 "72, 36, 12 and 4 hours respectively (returns get a day more).", synonyms=["priority", "severity"],
                 owner="support-operations", related=["support_tickets.priority"]),
    GlossaryTerm(name="escalation", definition="A ticket handed from tier 1 to tier 2, seen as a second reply by a "
                 "tier-2 agent.", synonyms=["escalated ticket"], owner="support-operations",
                 related=["ticket_replies.agent_id", "support_agents.team"]),
    GlossaryTerm(name="preference pair", definition="A prompt with a better (chosen) and a worse (rejected) "
                 "reply, the training data of DPO.", synonyms=["DPO pair", "comparison"], owner="ml-platform",
                 related=["reply_preferences"]),
)
