"""Phrase pools for the demo company: people, places, products and the wording of support mail.

Pure data read by `catalog.demo.company`, which picks from these pools with hash-based choices; it
must never hold real people's data (names are common given and family names, domains are `.example`).
Placeholders filled at generation time: {customer} {product} {order} {date} {issue} {agent}.
"""
from __future__ import annotations

from dataclasses import dataclass

FIRST_NAMES: tuple[str, ...] = (
    "Maria", "James", "Aisha", "Wei", "Sofia", "Lucas", "Priya", "Mateo", "Emma", "Kenji",
    "Olivia", "Noah", "Fatima", "Liam", "Chloe", "Arjun", "Isabella", "Ethan", "Yuki", "Hannah",
    "Daniel", "Amara", "Lars", "Elena", "Omar", "Grace", "Diego", "Mei", "Samuel", "Leila",
    "Thomas", "Nadia", "Henrik", "Camila", "Ravi", "Julia", "Tomas", "Zara", "Felix", "Ana",
    "Benjamin", "Ingrid", "Hiroshi", "Chiara", "Kwame", "Sara", "Pedro", "Lena", "Mohammed", "Ruth",
    "Jakob", "Valentina", "Sung-min", "Freya", "Gabriel", "Nora", "Rafael", "Aylin", "Oscar", "Ines",
    "Victor", "Maya", "Andre", "Keiko", "Marco", "Elif", "Jonas", "Lucia", "Ahmed", "Clara",
    "Jose", "Anika", "Patrick", "Lina", "Chen", "Beatriz", "Erik", "Simone", "David", "Tanvi",
)

LAST_NAMES: tuple[str, ...] = (
    "Garcia", "Smith", "Khan", "Zhang", "Rossi", "Martin", "Patel", "Lopez", "Johnson", "Tanaka",
    "Brown", "Muller", "Ahmed", "Wilson", "Dubois", "Sharma", "Silva", "Taylor", "Sato", "Becker",
    "Anderson", "Okafor", "Nilsen", "Popescu", "Haddad", "Kim", "Hernandez", "Wang", "Cohen", "Rahman",
    "Jensen", "Ivanova", "Lindqvist", "Fernandes", "Iyer", "Novak", "Costa", "Mensah", "Schmidt", "Moreau",
    "Nakamura", "Bianchi", "Owusu", "Larsen", "Santos", "Weber", "Yilmaz", "Park", "Murphy", "Kowalski",
    "Chatterjee", "Romero", "Fischer", "Ito", "Carvalho", "Walsh", "Eriksen", "Nguyen", "Alvarez", "Hoffmann",
    "Reyes", "Bakker", "Kapoor", "Morales", "Lambert", "Suzuki", "Oliveira", "Horvat", "Mendes", "Kaya",
    "Byrne", "Vogel", "Castillo", "Takahashi", "Greco", "Adeyemi", "Andersson", "Ferreira", "Chopra", "Vidal",
)

# Company domains for business customers; `.example` is reserved and never reaches a real mailbox.
COMPANY_DOMAINS: tuple[str, ...] = (
    "northwind.example", "brightlane.example", "kestrel-logistics.example", "bluefin-health.example",
    "orbitworks.example", "copperleaf.example", "harborline.example", "quantafoods.example",
    "meridian-energy.example", "lumen-retail.example", "tidewater.example", "pinecrest-labs.example",
    "redwood-legal.example", "silverline-bank.example", "atlas-build.example", "novatel.example",
    "greenfield-farms.example", "skyway-air.example", "vertex-media.example", "ironbridge.example",
)
PERSONAL_DOMAINS: tuple[str, ...] = ("example.com", "example.net", "example.org", "mail.example", "inbox.example")


@dataclass(frozen=True)
class Country:
    name: str
    # printf pattern with three numeric slots (%03d, %03d, %04d), so every number has the same length.
    phone: str


# Repeats weight the mix inside a region (the US dominates North America).
REGIONS: dict[str, tuple[Country, ...]] = {
    "EMEA": (
        Country("United Kingdom", "+44 7%03d %03d%04d"), Country("United Kingdom", "+44 7%03d %03d%04d"),
        Country("Germany", "+49 1%03d %03d%04d"), Country("Germany", "+49 1%03d %03d%04d"),
        Country("France", "+33 6%03d %03d %04d"), Country("Netherlands", "+31 6 %03d%03d%04d"),
        Country("Spain", "+34 6%03d %03d %04d"), Country("Italy", "+39 3%03d %03d %04d"),
        Country("Sweden", "+46 7%03d %03d %04d"), Country("South Africa", "+27 8%03d %03d %04d"),
        Country("United Arab Emirates", "+971 5%03d %03d %04d"),
    ),
    "NA": (
        Country("United States", "+1 (%03d) %03d-%04d"), Country("United States", "+1 (%03d) %03d-%04d"),
        Country("United States", "+1 (%03d) %03d-%04d"), Country("United States", "+1 (%03d) %03d-%04d"),
        Country("Canada", "+1 (%03d) %03d-%04d"),
    ),
    "APAC": (
        Country("Japan", "+81 %03d-%03d-%04d"), Country("Australia", "+61 4%03d %03d %04d"),
        Country("India", "+91 9%03d %03d %04d"), Country("India", "+91 9%03d %03d %04d"),
        Country("Singapore", "+65 9%03d %03d %04d"), Country("South Korea", "+82 %03d-%03d-%04d"),
    ),
    "LATAM": (
        Country("Brazil", "+55 %03d 9%03d-%04d"), Country("Brazil", "+55 %03d 9%03d-%04d"),
        Country("Mexico", "+52 %03d %03d %04d"), Country("Argentina", "+54 %03d %03d-%04d"),
        Country("Chile", "+56 9 %03d %03d %04d"), Country("Colombia", "+57 3%03d %03d %04d"),
    ),
}


@dataclass(frozen=True)
class ProductLine:
    brands: tuple[str, ...]
    nouns: tuple[str, ...]
    price_low: float
    price_high: float


PRODUCT_LINES: dict[str, ProductLine] = {
    "hardware": ProductLine(
        ("Nimbus", "Vector", "Aurora", "Granite", "Helix", "Summit", "Quasar", "Falcon"),
        ("Laptop 14", "Laptop 16", "Workstation", "Mini PC", "27\" Monitor", "Tablet", "Docking Station", "NAS 4-Bay"),
        199.0, 2499.0),
    "software": ProductLine(
        ("Ledgerly", "Pipeline", "Sentinel", "Canvas", "Tally", "Beacon", "Forge", "Relay"),
        ("Accounting Suite", "CRM", "Endpoint Security", "Design Studio", "Backup", "Analytics", "Build Server", "Mail Gateway"),
        49.0, 1199.0),
    "accessories": ProductLine(
        ("Nimbus", "Vector", "Aurora", "Granite", "Helix", "Summit", "Quasar", "Falcon"),
        ("Wireless Mouse", "Mechanical Keyboard", "USB-C Hub", "Laptop Sleeve", "Headset", "Webcam HD", "Power Adapter 100W", "Ergonomic Stand"),
        9.0, 149.0),
    "services": ProductLine(
        ("Onsite", "Remote", "Premium", "Express", "Standard", "Enterprise", "Rapid", "Managed"),
        ("Installation", "Setup Day", "Data Migration", "Training Session", "Health Check", "Repair Service", "Support Hours Pack", "Network Audit"),
        299.0, 4999.0),
    "subscriptions": ProductLine(
        ("Cloud", "Care", "Shield", "Sync", "Vault", "Insight", "Pulse", "Orbit"),
        ("Storage 1TB", "Plus Warranty", "Antivirus Seat", "Team Plan", "Backup Plan", "Analytics Seat", "Monitoring Plan", "Device Care"),
        9.0, 299.0),
}


@dataclass(frozen=True)
class Issue:
    """One problem a customer can write about, with the subject line they use, how it was resolved
    and the reply that solves it (specific, polite, names the fix)."""
    says: str
    subjects: tuple[str, ...]
    resolution: str
    reply: str


@dataclass(frozen=True)
class TicketText:
    """Wording for one kind of ticket: the mails customers write around an issue, and poor answers."""
    bodies: tuple[str, ...]            # each holds {issue} or {Issue}
    issues: tuple[Issue, ...]
    poor_replies: tuple[str, ...]      # curt or wrong for this kind of ticket


# Replies that fit no ticket well: they join every kind's poor pool beside its own wrong answers.
GENERIC_POOR_REPLIES: tuple[str, ...] = (
    "We are looking into it.",
    "Please wait.",
    "Noted. Someone will get back to you.",
    "Have you tried turning it off and on again?",
    "Please see the FAQ on our website.",
    "This is not something we can help with.",
    "ok",
    "Your ticket has been received. Do not reply to this message.",
)

# Polite but non-committal: the middle of the quality scale.
OKAY_REPLIES: tuple[str, ...] = (
    "Hi {customer},\n\nThank you for contacting us. I have passed your message to the responsible "
    "team and they will be in touch as soon as possible.\n\nBest regards,\n{agent}",
    "Hello {customer},\n\nThanks for reaching out and sorry for the trouble. We are checking this and will "
    "update you within a few working days.\n\nKind regards,\n{agent}",
    "Hi {customer},\n\nThanks for your patience. Could you send us a few more details so we can look into "
    "this?\n\nRegards,\n{agent}",
)

_SHIPPING = TicketText(
    bodies=(
        "Hi,\n\nI placed order {order} on {date} for the {product} and {issue}. Could you tell me where it "
        "is and when I can expect it?\n\nThanks,\n{customer}",
        "Hello support team,\n\nAbout order {order} ({date}): {issue}. I need the {product} for a client "
        "visit next week, can you check with the carrier?\n\nBest regards,\n{customer}",
        "Hi there, {issue}. Order number is {order}, ordered on {date}. Please advise what happens "
        "now.\n{customer}",
        "Good morning,\n\nI'm writing about my {product} (order {order}). Unfortunately {issue}. I would "
        "appreciate a quick update.\n\nKind regards,\n{customer}",
    ),
    issues=(
        Issue("the tracking page has shown 'label created' for six days",
              ("Where is my order {order}?", "Tracking not updating for order {order}"),
              "Carrier trace opened; parcel found unscanned at the depot and delivered the next day.",
              "Hi {customer},\n\nThank you for your patience, and sorry the {product} from order {order} is "
              "late. I checked with the carrier: the parcel was sitting at their depot without a scan. They "
              "have put it on tomorrow's first delivery round, and I've refunded your shipping fee. You'll "
              "get an e-mail with the updated tracking link within the hour.\n\nKind regards,\n{agent}"),
        Issue("the parcel was marked as delivered yesterday but nothing arrived",
              ("Order {order} marked delivered but not received", "Parcel not received"),
              "Carrier confirmed misdelivery; replacement shipped by express at no charge.",
              "Hi {customer},\n\nI'm sorry the parcel didn't reach you. The carrier's GPS record shows it "
              "was left at the wrong address, so I've sent a replacement {product} by express delivery "
              "today at no cost to you; it should arrive within two working days. If the first parcel turns "
              "up, just refuse it or let me know and we'll collect it.\n\nBest regards,\n{agent}"),
        Issue("the box arrived crushed and the {product} inside is dented",
              ("Damaged parcel: {product}", "{product} arrived damaged"),
              "Replacement {product} shipped by express; courier collected the damaged unit.",
              "Hello {customer},\n\nI'm sorry the {product} arrived damaged. I've shipped a replacement by "
              "express delivery today at no cost to you. The courier will collect the damaged unit when they "
              "deliver the new one, so there is nothing you need to print or pack.\n\nBest regards,\n{agent}"),
        Issue("only part of the order was in the box and the {product} is missing",
              ("Missing item in my delivery", "Order {order} incomplete"),
              "Missing {product} re-sent from the warehouse with a new tracking number.",
              "Hi {customer},\n\nThanks for letting us know. The {product} was left out of your parcel by "
              "mistake at our warehouse. I've sent it separately with tracked next-day delivery and you'll "
              "get the tracking number by e-mail shortly. If it hasn't arrived by Friday, reply here and "
              "I'll follow it up personally.\n\nWarm regards,\n{agent}"),
        Issue("the courier left a card saying the address could not be found",
              ("Wrong address on order {order}", "Courier can't find my address"),
              "Delivery address corrected with the carrier; redelivered the following day.",
              "Hi {customer},\n\nSorry about that: the house number was missing from the label on order "
              "{order}. I've corrected the address with the carrier and booked a redelivery for tomorrow "
              "between 9:00 and 13:00. I've also refunded the shipping fee for the trouble.\n\n"
              "Kind regards,\n{agent}"),
    ),
    poor_replies=(
        "Deliveries can take up to 30 days. Please be patient.",
        "Hi {customer}, your order {order} was cancelled, so there is nothing to deliver.",
        "Please contact the courier directly.",
    ),
)

_RETURNS = TicketText(
    bodies=(
        "Hi,\n\nI'd like to return the {product} from order {order} (ordered {date}) because {issue}. "
        "How do I send it back?\n\nThanks,\n{customer}",
        "Hello,\n\nI'm returning the {product}: {issue}. Please refund order {order} to my card.\n\n"
        "Regards,\n{customer}",
        "Dear support,\n\nCould I return or exchange the {product} I ordered on {date} (order {order})? The "
        "reason is that {issue}.\n\nKind regards,\n{customer}",
    ),
    issues=(
        Issue("it is not compatible with my setup",
              ("Return request for order {order}", "I want to return the {product}"),
              "Prepaid return label issued; refund processed once the parcel was scanned at the warehouse.",
              "Hi {customer},\n\nOf course: you can return the {product} within 30 days of delivery. I've "
              "e-mailed you a prepaid return label for order {order}; drop the parcel at any post office. "
              "Your refund will go back to your original payment method within three working days of the "
              "parcel reaching us, and I'll confirm by e-mail when it's done.\n\nKind regards,\n{agent}"),
        Issue("I ordered the wrong model by mistake",
              ("Exchange {product} for a different model", "Wrong model ordered"),
              "Exchange approved; the right model shipped as soon as the return was scanned.",
              "Hi {customer},\n\nHappy to swap the {product} for the model you need. I've reserved it for "
              "you and it will ship as soon as the carrier scans your return; the prepaid label is attached "
              "and there is no price difference to pay.\n\nAll the best,\n{agent}"),
        Issue("I sent it back ten days ago and haven't heard anything",
              ("Return for order {order}: status?", "Refund for returned {product}"),
              "Return found at the warehouse, inspected and refunded in full.",
              "Hello {customer},\n\nThanks for sending the {product} back, and sorry for the silence. It "
              "reached our warehouse on Monday and passed inspection, so I've just issued the full refund "
              "for order {order}. Depending on your bank it will show on your statement in two to five "
              "days.\n\nBest regards,\n{agent}"),
        Issue("the quality is not what the product page suggested",
              ("Return request for order {order}", "Not happy with the {product}"),
              "Return accepted; full refund issued and product page feedback passed on.",
              "Hi {customer},\n\nI'm sorry the {product} didn't meet your expectations, and thank you for "
              "telling us why. I've sent a prepaid return label for order {order} and passed your comments "
              "to the product team. Your full refund will be issued the day the parcel reaches us.\n\n"
              "Kind regards,\n{agent}"),
        Issue("the return label in my account gives an error",
              ("Return label not working", "Can't print return label for order {order}"),
              "Return label regenerated and sent by e-mail.",
              "Hi {customer},\n\nSorry about the broken label: it was a problem on our side. I've generated "
              "a new prepaid label for the {product} on order {order} and sent it to your e-mail as a PDF. "
              "Once the parcel is scanned, your refund goes out within three working days.\n\n"
              "Best regards,\n{agent}"),
    ),
    poor_replies=(
        "Returns are not accepted.",
        "Hi {customer}, refunds are only possible within 24 hours of ordering, so we cannot help with order {order}.",
        "Send it back and we'll see what we can do.",
    ),
)

_RETURNS_DIGITAL = TicketText(
    bodies=(
        "Hi,\n\nI'd like to cancel the {product} from order {order} ({date}) and get a refund: {issue}.\n\n"
        "Thanks,\n{customer}",
        "Hello,\n\nPlease refund order {order}. {Issue}.\n\nRegards,\n{customer}",
    ),
    issues=(
        Issue("it doesn't do what we need after all",
              ("Refund request: {product}", "Cancel {product} on order {order}"),
              "Licence deactivated and order refunded within the 30-day window.",
              "Hi {customer},\n\nNo problem: order {order} is within our 30-day money-back period. I've "
              "deactivated the {product} licence and refunded the full amount to your original payment "
              "method; it will show within five working days.\n\nKind regards,\n{agent}"),
        Issue("we bought it twice by mistake",
              ("Duplicate purchase of {product}", "Refund duplicate order {order}"),
              "Duplicate licence cancelled and refunded.",
              "Hi {customer},\n\nThanks for spotting that. I've cancelled the duplicate {product} licence on "
              "order {order} and refunded it in full; your other licence keeps working as before.\n\n"
              "Best regards,\n{agent}"),
        Issue("the booked session was cancelled on your side and never rescheduled",
              ("Refund for cancelled {product}", "{product} never happened"),
              "Service refunded in full with an apology.",
              "Hello {customer},\n\nI'm sorry the {product} was cancelled and nobody followed up. I've "
              "refunded order {order} in full today. If you'd still like the session, I can book the first "
              "free slot next week at a 20% discount; just reply with a day that suits you.\n\n"
              "Kind regards,\n{agent}"),
    ),
    poor_replies=(
        "Software is non-refundable.",
        "Hi {customer}, please send the item back in its original packaging.",
    ),
)

_PRODUCT_HARDWARE = TicketText(
    bodies=(
        "Hello,\n\nI bought the {product} on {date} (order {order}) and {issue}. I've already restarted it "
        "and checked for updates. What else can I try?\n\nThanks,\n{customer}",
        "Hi support,\n\nMy {product} has a problem: {issue}. This is really affecting my work. Order "
        "{order}.\n\nRegards,\n{customer}",
        "Dear team,\n\nThe {product} I received on order {order} does not work properly: {issue}. I would "
        "like a repair or a replacement.\n\nBest,\n{customer}",
    ),
    issues=(
        Issue("the battery drains completely within two hours",
              ("{product} battery drains fast", "Battery problem with my {product}"),
              "Battery confirmed faulty; warranty replacement dispatched.",
              "Hi {customer},\n\nThanks for the detail. A full drain in two hours means the battery cell is "
              "faulty, which our two-year warranty covers. I've created a replacement order for the "
              "{product} at no charge; it ships today, and a prepaid label for the old unit is attached.\n\n"
              "Kind regards,\n{agent}"),
        Issue("it won't pair over Bluetooth with any of my devices",
              ("{product} won't pair", "Bluetooth problem with {product}"),
              "Customer guided through a pairing reset; issue resolved.",
              "Hi {customer},\n\nLet's reset the pairing: hold the power button for ten seconds until the "
              "light flashes blue twice, then remove the {product} from your computer's Bluetooth list and "
              "pair it again. That clears the old pairing keys, which is what blocks it here. If it still "
              "won't pair, reply and I'll send a replacement straight away.\n\nBest regards,\n{agent}"),
        Issue("the screen flickers after it wakes from sleep",
              ("{product} screen flickering", "Display problem with my {product}"),
              "Known firmware fault; customer installed firmware 2.4.1 and the flicker stopped.",
              "Hi {customer},\n\nWhat you describe is a known firmware fault in the {product} that version "
              "2.4.1 fixes. Please open Settings > Updates, install 2.4.1 and restart once; the flicker "
              "should not come back. If it does, reply here and I'll arrange a warranty replacement.\n\n"
              "All the best,\n{agent}"),
        Issue("it makes a loud clicking noise when it starts",
              ("{product} making clicking noise", "Defective {product}?"),
              "Unit confirmed defective; replaced under warranty.",
              "Hello {customer},\n\nA clicking noise at start-up is not normal for the {product}, so please "
              "stop using it to avoid data loss. I've arranged a warranty replacement that ships today; the "
              "courier will swap it for the old unit at your door.\n\nKind regards,\n{agent}"),
    ),
    poor_replies=(
        "Works fine on our side.",
        "You must have used it wrong. Read the manual.",
        "Hi {customer}, please reinstall the software and re-enter your licence key.",
    ),
)

_PRODUCT_SOFTWARE = TicketText(
    bodies=(
        "Hello,\n\nI bought {product} on {date} (order {order}) and {issue}. What can I do?\n\nThanks,\n{customer}",
        "Hi support,\n\nProblem with {product}: {issue}. Our team depends on it. Order {order}.\n\n"
        "Regards,\n{customer}",
        "Hi, since last week {issue}. It's {product} from order {order}. Is this a known issue?\n\n{customer}",
    ),
    issues=(
        Issue("the licence key from the confirmation e-mail is rejected",
              ("{product} licence key not accepted", "Activation problem: {product}"),
              "Licence re-issued and activated remotely with the customer.",
              "Hi {customer},\n\nSorry about that: the key in your confirmation e-mail was generated for "
              "the wrong edition. I've re-issued your {product} licence and activated it on our side; the "
              "new key I just sent works on up to three devices.\n\nAll the best,\n{agent}"),
        Issue("it crashes every time I open a large file",
              ("{product} keeps crashing", "Crash when opening large files"),
              "Known memory bug fixed in 5.2.3; customer updated and confirmed the fix.",
              "Hi {customer},\n\nThanks for the report. This is a memory bug in {product} 5.2.2 that "
              "version 5.2.3 fixes. Please choose Help > Check for updates, install 5.2.3 and reopen the "
              "file. If it still crashes, send me the file size and I'll escalate it to our developers "
              "today.\n\nBest regards,\n{agent}"),
        Issue("the sync has stopped and shows 'authentication failed'",
              ("{product} sync failing", "'Authentication failed' in {product}"),
              "Expired token revoked; customer signed in again and sync resumed.",
              "Hello {customer},\n\nThe sign-in token for {product} expired after our security update. "
              "Please sign out under Settings > Account and sign back in; sync resumes by itself and "
              "nothing is lost, since your data stayed on our servers.\n\nKind regards,\n{agent}"),
        Issue("I can't add more seats for new colleagues",
              ("Adding seats to {product}", "Seat limit reached in {product}"),
              "Seat limit raised on the customer's plan; new users invited.",
              "Hi {customer},\n\nYour plan was capped at the seats bought on order {order}. I've raised the "
              "limit so you can invite new colleagues under Admin > Users right away; the extra seats will "
              "be billed pro rata on your next invoice.\n\nBest regards,\n{agent}"),
    ),
    poor_replies=(
        "Works fine on our side.",
        "Hi {customer}, please check that the cable is plugged in.",
        "Reinstall it.",
    ),
)

_PRODUCT_SERVICE = TicketText(
    bodies=(
        "Hello,\n\nWe booked {product} (order {order}, {date}) and {issue}. Please sort this out.\n\n"
        "Thanks,\n{customer}",
        "Hi,\n\nAbout {product} on order {order}: {issue}.\n\nRegards,\n{customer}",
    ),
    issues=(
        Issue("the technician didn't turn up at the agreed time",
              ("Technician no-show for {product}", "{product}: nobody came"),
              "Visit rebooked for the next morning with a priority technician; fee refunded.",
              "Hi {customer},\n\nI'm very sorry nobody came. I've booked a priority technician for tomorrow "
              "at 9:00, confirmed by phone with them, and refunded the call-out fee on order {order}. "
              "You'll get a text when they are on their way.\n\nKind regards,\n{agent}"),
        Issue("we haven't received a date for the session yet",
              ("Scheduling {product}", "When is our {product}?"),
              "Session scheduled with the customer and calendar invite sent.",
              "Hi {customer},\n\nThanks for your patience. I've scheduled {product} for next Tuesday at "
              "10:00 and sent a calendar invitation with the trainer's contact details. If that time doesn't "
              "work, reply with two alternatives and I'll move it.\n\nBest regards,\n{agent}"),
        Issue("the work was left unfinished",
              ("{product} not completed", "Unfinished work on order {order}"),
              "Follow-up visit booked to finish the work at no charge.",
              "Hello {customer},\n\nI'm sorry the job was left unfinished. I've booked a follow-up visit on "
              "Thursday morning to complete it at no charge, and the engineer will send you a written report "
              "when it's done.\n\nKind regards,\n{agent}"),
    ),
    poor_replies=(
        "The technician's schedule is full.",
        "Hi {customer}, please restart the device and try again.",
    ),
)

_BILLING = TicketText(
    bodies=(
        "Hello,\n\nRegarding order {order} from {date}: {issue}. Please correct this.\n\nThanks,\n{customer}",
        "Hi billing team,\n\n{Issue}. It's order {order}, placed on {date}. Can you look into it "
        "today?\n\nRegards,\n{customer}",
        "Dear support,\n\nOn my statement I can see that {issue}. The order is {order}, placed on {date}.\n\n"
        "Kind regards,\n{customer}",
    ),
    issues=(
        Issue("my card was charged twice for the same order",
              ("Charged twice for order {order}", "Duplicate charge"),
              "Duplicate charge confirmed and refunded.",
              "Hi {customer},\n\nYou're right, and I apologise: order {order} was charged twice because of "
              "a payment gateway timeout. I've refunded the duplicate charge today; it will appear on your "
              "statement within three to five working days. The refund reference is in the e-mail I've "
              "just sent.\n\nKind regards,\n{agent}"),
        Issue("the refund you confirmed two weeks ago hasn't arrived",
              ("Refund not received for order {order}", "Where is my refund?"),
              "Refund traced with the payment provider; reference sent to the customer.",
              "Hi {customer},\n\nI traced the refund for order {order}: it left us on the 3rd and is with "
              "your bank. The reference is RF-{order}; if your bank can't find it by Friday, reply here and "
              "I'll resend it as a bank transfer.\n\nBest regards,\n{agent}"),
        Issue("I need an invoice with our company's VAT number for our accounts",
              ("Invoice for order {order}", "VAT number missing on invoice"),
              "Corrected invoice with VAT number issued.",
              "Hello {customer},\n\nI've attached a corrected invoice for order {order} that includes your "
              "VAT number and company address. The amount is unchanged, so there is nothing else to pay.\n\n"
              "Best regards,\n{agent}"),
        Issue("I cancelled the order but was still charged",
              ("Charged for a cancelled order", "Cancelled order {order} still charged"),
              "Cancellation confirmed; the charge was refunded in full.",
              "Hi {customer},\n\nI can confirm order {order} was cancelled before it shipped, so you should "
              "not have been charged. I've refunded the full amount today; it will show within three to five "
              "working days.\n\nKind regards,\n{agent}"),
        Issue("the discount code wasn't applied to the {product}",
              ("Discount not applied", "Wrong amount charged for order {order}"),
              "Price difference refunded and discount applied retroactively.",
              "Hi {customer},\n\nThe discount should have applied to the {product}. I've refunded the "
              "difference to your card and noted it on order {order}; you'll see it within a few days. "
              "Sorry for the hassle!\n\nAll the best,\n{agent}"),
    ),
    poor_replies=(
        "Our system shows no duplicate charge.",
        "Hi {customer}, please reset your password from the login page.",
        "Talk to your bank.",
    ),
)

_BILLING_GENERAL = TicketText(
    bodies=(
        "Hello,\n\n{Issue}. Could you help?\n\nThanks,\n{customer}",
        "Hi billing team,\n\nQuick one: {issue}.\n\nRegards,\n{customer}",
        "Dear support,\n\n{Issue}. Please let me know what you need from me.\n\nKind regards,\n{customer}",
    ),
    issues=(
        Issue("there is a charge on my card I don't recognise",
              ("Unknown charge on my card", "Question about my last statement"),
              "Charge explained (annual plan renewal) and refunded as a courtesy.",
              "Hi {customer},\n\nThat charge is the annual renewal of your subscription. Because the "
              "reminder e-mail didn't reach you, I've refunded it in full; if you'd like to keep the plan, "
              "you can renew from your account at any time at the same price.\n\nKind regards,\n{agent}"),
        Issue("I need copies of all invoices from this year",
              ("Request for a copy of all invoices", "Invoices for our accounts"),
              "Invoice bundle for the year sent as one PDF.",
              "Hello {customer},\n\nI've put all of this year's invoices into one PDF and sent it to the "
              "e-mail on your account. You can also download them at any time under Account > Billing.\n\n"
              "Best regards,\n{agent}"),
        Issue("my card expired and I want to add a new one",
              ("Update payment method", "New card for my account"),
              "Payment method updated by the customer with guidance.",
              "Hi {customer},\n\nYou can add the new card under Account > Billing > Payment methods; once "
              "it's saved, set it as default and we'll use it for the next renewal. I've paused retries on "
              "the old card so you won't get failed-payment e-mails.\n\nAll the best,\n{agent}"),
        Issue("I'd like to switch our plan to annual billing",
              ("Switch to annual billing", "Annual plan"),
              "Plan switched to annual billing with pro-rated credit.",
              "Hi {customer},\n\nDone: your plan is now billed annually, which saves you two months a year. "
              "The unused part of this month is credited against the first annual invoice, which you'll "
              "receive today.\n\nKind regards,\n{agent}"),
    ),
    poor_replies=(
        "All charges are correct.",
        "Hi {customer}, please return the item for a refund.",
        "Check your statement again.",
    ),
)

_ACCOUNT = TicketText(
    bodies=(
        "Hi,\n\n{Issue}. I've tried twice today. Can you help?\n\nThanks,\n{customer}",
        "Hello support,\n\nI have a problem with my account: {issue}.\n\nRegards,\n{customer}",
        "Hi there, quick question about my account: {issue}. What do you need from me?\n\n{customer}",
    ),
    issues=(
        Issue("the password reset e-mail never arrives",
              ("Password reset e-mail never arrives", "Can't log in to my account"),
              "Reset link re-sent after the address was removed from the bounce list.",
              "Hi {customer},\n\nYour address had landed on our bounce list after a mailbox error, which "
              "is why the reset e-mails never arrived. I've removed it and sent a fresh reset link; it is "
              "valid for one hour. If it isn't in your inbox in a few minutes, please check the spam "
              "folder.\n\nKind regards,\n{agent}"),
        Issue("the two-factor code is always rejected",
              ("Two-factor code not working", "Locked out by two-factor"),
              "Two-factor device reset; customer logged in successfully.",
              "Hello {customer},\n\nThanks for confirming your details. I've reset the two-factor device on "
              "your account, so the next time you log in you'll be asked to scan a new QR code with your "
              "authenticator app. The old codes stop working, which is what we want.\n\nBest regards,\n{agent}"),
        Issue("I changed jobs and need to move the account to a new e-mail address",
              ("Change the e-mail on my account", "New e-mail address"),
              "Account e-mail changed after verification of both addresses.",
              "Hi {customer},\n\nDone: your account now uses the new e-mail address and all your orders have "
              "moved with it. I've sent a confirmation to both addresses.\n\nAll the best,\n{agent}"),
        Issue("I'd like my account and personal data deleted",
              ("Please close my account", "Data deletion request"),
              "Account closed and personal data deletion confirmed in writing.",
              "Hi {customer},\n\nI've closed your account and started the deletion of your personal data; it "
              "completes within 30 days, as the law requires, and you'll get a written confirmation. Invoices "
              "we must keep for tax purposes are stored without your contact details.\n\nKind regards,\n{agent}"),
        Issue("a new colleague needs access to our order history",
              ("Add a colleague to our company account", "Second user for our account"),
              "Colleague invited as a team member with order-history access.",
              "Hi {customer},\n\nI've sent your colleague an invitation to join your company account with "
              "access to the order history; they only need to accept it and choose a password. You can "
              "change their rights at any time under Account > Team.\n\nBest regards,\n{agent}"),
    ),
    poor_replies=(
        "Just make a new account.",
        "Hi {customer}, the order has shipped and should arrive in 3-5 days.",
        "We cannot change account details.",
    ),
)

# Keyed by the ticket's text kind: its category, refined by the kind of product or by whether an
# order is behind it (see `catalog.demo.company`).
TICKETS: dict[str, TicketText] = {
    "shipping": _SHIPPING,
    "returns": _RETURNS,
    "returns_digital": _RETURNS_DIGITAL,
    "product_hardware": _PRODUCT_HARDWARE,
    "product_software": _PRODUCT_SOFTWARE,
    "product_service": _PRODUCT_SERVICE,
    "billing": _BILLING,
    "billing_general": _BILLING_GENERAL,
    "account": _ACCOUNT,
}
