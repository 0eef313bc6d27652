"""Pages of the crawl: sites, the :class:`Page` record, PII contact sections, near duplicates, HTML
rendering of articles, and the boilerplate, spam and short pages."""

import html
import ipaddress
import random
import re
from dataclasses import dataclass, field

from gristmill_plugins.demo_data.article import Article
from gristmill_plugins.demo_data.english_topics.cooking import COOK_TITLES, DISHES
from gristmill_plugins.demo_data.english_topics.gardening import GARDEN_PLANTS, GARDEN_TITLES
from gristmill_plugins.demo_data.foreign import FOREIGN
from gristmill_plugins.demo_data.vocab import MONTHS, _cap, _date_text, _format, _person, _slug, _title, _town

SITE_NAMES: dict[str, tuple[str, ...]] = {
    "gardening": (
        "Greenleaf Garden Journal",
        "The Potting Shed",
        "Allotment Diaries",
        "Backyard Harvest",
        "Seed and Spade",
    ),
    "cooking": ("The Weeknight Kitchen", "Crumbs and Ladles", "Family Table Recipes", "The Thrifty Cook", "Slow Pan"),
    "history": ("Local History Notes", "The Parish Pump", "Old Town Chronicle", "Mill and Market Society"),
    "travel": ("Slow Road Travels", "Coast and Country", "The Wandering Boot", "Quiet Corners"),
    "science": ("Curious Minds", "Everyday Science", "The Question Box", "Ask a Scientist Weekly"),
    "math": ("Maths at Home", "Number Garden", "Homework Helper", "The Sums Club"),
}
SITE_NAV: dict[str, tuple[str, ...]] = {
    "gardening": ("Home", "Vegetables", "Fruit", "Flowers", "Allotments", "About", "Contact"),
    "cooking": ("Home", "Recipes", "Baking", "Soups", "Budget Meals", "About", "Contact"),
    "history": ("Home", "Articles", "Archive", "Events", "Membership", "About", "Contact"),
    "travel": ("Home", "Destinations", "Walks", "Where to Stay", "Tips", "About", "Contact"),
    "science": ("Home", "Explainers", "Experiments", "Ask a Question", "About", "Contact"),
    "math": ("Home", "Worksheets", "Problems", "For Parents", "For Teachers", "About", "Contact"),
}
MIRROR_HOSTS = ("archive-mirror.example", "webcache-copy.example", "old-mirror.example", "content-backup.example")
SCRAPER_SITES = ("Daily Digest Hub", "Top Reads Online", "Article Collector", "The Content Stream", "Best Of Blogs")


@dataclass
class Page:
    """One planned page of the crawl."""

    number: int
    category: str
    sub: str
    host: str
    slug: str
    body: bytes = b""
    charset: str = "utf-8"
    lang: str = "en"
    words: int = 0
    dup_of: int | None = None
    article: Article | None = None
    pii: list[str] = field(default_factory=list)
    original: "Page | None" = None

    @property
    def url(self) -> str:
        """The page URL (category, topic/language and page number are readable from it)."""
        query = f"?dup_of={self.dup_of}" if self.dup_of is not None else ""
        return f"https://{self.host}/{self.category}/{self.sub}/{self.slug}-p{self.number}.html{query}"


PII_SENTENCES = (
    "If you have questions about {subject}, you can write to {email}, and {name} usually replies within a couple "
    "of days.",
    "Our small website is hosted on a server at {ip}, so if the usual address stops working you can try that "
    "one instead.",
    "Volunteers for the next open day should contact {contact} at {email2} before the end of {month}.",
    "The booking form sometimes fails on older browsers, and in that case you can send your details to {email2} "
    "instead.",
    "For technical problems with the site, our administrator reads {email} and the status page lives at {ip}.",
    "Last month our mail server at {ip2} was down for a day, so please resend any message that bounced.",
    "Press enquiries go to {email}, while general questions are best sent to {email2}.",
    "Members can download the newsletter archive from our file server at {ip2} using the password printed in the "
    "magazine.",
)
PII_HEADINGS = ("Contact us", "Get in touch", "How to reach us", "Questions and bookings")
EMAIL_DOMAINS = ("example.org", "example.com", "example.net", "mail.example.org", "post.example.com")
PUBLIC_FIRST_OCTETS = (23, 31, 45, 51, 62, 77, 81, 89, 93, 104, 141, 151, 176, 185, 193, 212, 217)


def _public_ip(rng: random.Random) -> str:
    while True:
        ip = f"{rng.choice(PUBLIC_FIRST_OCTETS)}.{rng.randint(1, 254)}.{rng.randint(1, 254)}.{rng.randint(1, 254)}"
        if ipaddress.ip_address(ip).is_global:
            return ip


def _email(rng: random.Random, first: str, last: str) -> str:
    user = rng.choice((f"{first}.{last}", f"{first[0]}{last}", f"{first}", f"{last}.{first[0]}", "info"))
    return f"{user.lower()}@{rng.choice(EMAIL_DOMAINS)}"


# Near-duplicate edits: word swaps that keep the sentence grammatical.
SYNONYMS = {
    " small ": " little ",
    " large ": " big ",
    " often ": " frequently ",
    " quickly ": " fast ",
    " usually ": " normally ",
    " simple ": " easy ",
    " begin ": " start ",
    " about ": " around ",
    " many ": " plenty of ",
    " old ": " ancient ",
}


def _near_duplicate(article: Article, rng: random.Random) -> Article:
    """Copy ``article`` with a couple of words swapped and, for long pages, one sentence replaced."""
    sections = [(h, list(ps)) for h, ps in article.sections]
    swaps = rng.randint(1, 2)
    cells = [(si, pi) for si, (_, ps) in enumerate(sections) for pi in range(len(ps))]
    rng.shuffle(cells)
    for si, pi in cells:
        if swaps == 0:
            break
        text = sections[si][1][pi]
        for old, new in SYNONYMS.items():
            if old in text:
                sections[si][1][pi] = text.replace(old, new, 1)
                swaps -= 1
                break
    if article.words() > 450 and article.unused:
        si, pi = cells[-1]
        sentences = re.split(r"(?<=[.?!]) ", sections[si][1][pi])
        if len(sentences) > 2:
            sentences[rng.randrange(len(sentences))] = rng.choice(article.unused)
            sections[si][1][pi] = " ".join(sentences)
    return Article(title=article.title, sections=sections, topic=article.topic, lang=article.lang)


def _add_pii(article: Article, rng: random.Random) -> list[str]:
    first, full = _person(rng)
    last = full.split()[1]
    c_first, contact = _person(rng)
    emails = [_email(rng, first, last), _email(rng, c_first, contact.split()[1])]
    if emails[0] == emails[1]:
        emails[1] = f"office@{rng.choice(EMAIL_DOMAINS)}"
    ips = [_public_ip(rng), _public_ip(rng)]
    subject = article.title.lower()
    ctx = {
        "subject": subject,
        "email": emails[0],
        "email2": emails[1],
        "ip": ips[0],
        "ip2": ips[1],
        "name": first,
        "contact": contact,
        "month": rng.choice(MONTHS),
    }
    chosen = rng.sample(PII_SENTENCES, rng.randint(3, 4))
    if not any("{ip" in s for s in chosen):
        chosen[-1] = PII_SENTENCES[1]
    if not any("{email" in s for s in chosen):
        chosen[0] = PII_SENTENCES[0]
    text = " ".join(_format(s, ctx) for s in chosen)
    article.sections.append((rng.choice(PII_HEADINGS), [text]))
    return [x for x in [*emails, *ips] if x in text]


def _render(
    page: Page,
    site: str,
    nav: tuple[str, ...],
    rng: random.Random,
    footer: str = "All rights reserved.",
    by: str = "By",
) -> None:
    assert page.article is not None
    _, author = _person(rng)
    if page.lang in FOREIGN:
        author = rng.choice(FOREIGN[page.lang]["names"])
    related = None
    if page.lang == "en" and rng.random() < 0.7:
        related = [
            _format(
                rng.choice(GARDEN_TITLES + COOK_TITLES),
                {
                    "Plant": _cap(rng.choice(GARDEN_PLANTS)[0]),
                    "Dish": _title(rng.choice(DISHES)[0]),
                    "town": _town(rng),
                },
            )
            for _ in range(3)
        ]
    text = render_article_html(
        page.article, site, nav, author, _date_text(rng), page.url, page.charset, related, footer, by
    )
    try:
        page.body = text.encode(page.charset)
    except UnicodeEncodeError:
        page.charset = "utf-8"
        text = render_article_html(
            page.article, site, nav, author, _date_text(rng), page.url, "utf-8", related, footer, by
        )
        page.body = text.encode("utf-8")
    page.words = page.article.words()


# --------------------------------------------------------------------------------------------
# HTML rendering
# --------------------------------------------------------------------------------------------

_E = html.escape


def _nav(items: tuple[str, ...] | list[str]) -> str:
    links = "".join(f'<li><a href="/{_slug(i) if i != items[0] else ""}">{_E(i)}</a></li>' for i in items)
    return f'<nav class="main-nav"><ul>{links}</ul></nav>'


def _head(title: str, charset: str, canonical: str | None, description: str = "") -> str:
    canon = f'<link rel="canonical" href="{_E(canonical)}">\n' if canonical else ""
    desc = f'<meta name="description" content="{_E(description)}">\n' if description else ""
    return (
        f'<head>\n<meta charset="{charset}">\n<meta name="viewport" content="width=device-width, '
        f'initial-scale=1">\n<title>{_E(title)}</title>\n{desc}{canon}'
        f'<link rel="stylesheet" href="/static/site.css">\n</head>'
    )


def render_article_html(
    article: Article,
    site: str,
    nav: tuple[str, ...],
    author: str,
    date: str,
    url: str,
    charset: str = "utf-8",
    related: list[str] | None = None,
    footer: str = "All rights reserved.",
    by: str = "By",
) -> str:
    """A realistic article page: head, header/nav, <article> with <h1>/<h2>/<p>, aside and footer."""
    body = [f"<h1>{_E(article.title)}</h1>", f'<p class="byline">{_E(by)} {_E(author)} | {_E(date)}</p>']
    for heading, paragraphs in article.sections:
        if heading:
            body.append(f"<h2>{_E(heading)}</h2>")
        body.extend(f"<p>{_E(p)}</p>" for p in paragraphs)
    aside = ""
    if related:
        items = "".join(f'<li><a href="/{_slug(r)}">{_E(r)}</a></li>' for r in related)
        aside = f'<aside class="related"><h3>Related</h3><ul>{items}</ul></aside>\n'
    first = article.sections[0][1][0] if article.sections and article.sections[0][1] else ""
    description = " ".join(first.split()[:24])
    return (
        f'<!DOCTYPE html>\n<html lang="{article.lang}">\n'
        f"{_head(f'{article.title} | {site}', charset, url, description)}\n<body>\n"
        f'<header class="site-header"><div class="logo"><a href="/">{_E(site)}</a></div>\n{_nav(nav)}</header>\n'
        f'<main>\n<article class="post">\n' + "\n".join(body) + "\n</article>\n" + aside + "</main>\n"
        f'<footer class="site-footer"><p>&copy; {date[-4:]} {_E(site)}. {_E(footer)}</p>'
        f"{_nav(nav[-2:])}</footer>\n</body>\n</html>\n"
    )


BOILER_LINKS = (
    "Home",
    "About Us",
    "Contact",
    "Blog",
    "Shop",
    "Careers",
    "Press",
    "Help Centre",
    "FAQ",
    "Sitemap",
    "Login",
    "Register",
    "My Account",
    "Basket",
    "Wishlist",
    "Store Locator",
    "Gift Cards",
    "Delivery",
    "Returns",
    "Size Guide",
    "Newsletter",
    "Events",
    "Offers",
    "New Arrivals",
    "Best Sellers",
    "Brands",
    "Accessibility",
    "Terms",
    "Privacy",
    "Cookies",
    "Affiliates",
    "Investors",
    "Partners",
    "Support",
    "Track Order",
)
BOILER_CATEGORIES = (
    "Garden Tools",
    "Kitchenware",
    "Outdoor Furniture",
    "Lighting",
    "Bedding",
    "Storage",
    "Paint",
    "Flooring",
    "Pet Supplies",
    "Toys",
    "Stationery",
    "Bathroom",
    "Tiles",
    "Curtains",
    "Rugs",
    "Barbecues",
)
BOILER_SHOPS = (
    "Oakfield Home Store",
    "Brightwell Hardware",
    "Northgate Outlet",
    "Hazelbury Supplies",
    "Redmore Direct",
)


def _boilerplate_html(rng: random.Random, charset: str) -> tuple[str, int, str]:
    shop = rng.choice(BOILER_SHOPS)
    links = rng.sample(BOILER_LINKS, rng.randint(14, 26))
    cats = rng.sample(BOILER_CATEGORIES, rng.randint(6, 12))
    town = _town(rng)
    pieces = [
        '<div class="cookie-banner">We use cookies to improve your experience. <a href="/cookies">Cookie '
        "settings</a> <button>Accept all</button> <button>Reject</button></div>",
        f'<header><div class="logo"><a href="/">{_E(shop)}</a></div>'
        f'<div class="top-links">{" | ".join(_E(x) for x in links[:6])}</div>{_nav(links)}</header>',
        f'<div class="breadcrumb"><a href="/">Home</a> &gt; <a href="/c">{_E(cats[0])}</a> &gt; Page '
        f"{rng.randint(2, 40)}</div>",
        '<div class="categories"><ul>'
        + "".join(f'<li><a href="/c/{_slug(c)}">{_E(c)}</a></li>' for c in cats)
        + "</ul></div>",
        f'<div class="promo">Free delivery over {rng.choice((25, 30, 40, 50))} pounds | Click and collect | '
        f"Price match</div>",
        '<div class="newsletter">Sign up to our newsletter <input type="email" placeholder="Your email"> '
        "<button>Subscribe</button></div>",
        '<div class="social">Follow us: Facebook | Instagram | Pinterest | YouTube</div>',
        f"<footer>{_nav(rng.sample(BOILER_LINKS, 10))}<p>&copy; {rng.randint(2015, 2024)} {_E(shop)}, {_E(town)}. "
        f"All rights reserved.</p></footer>",
    ]
    if rng.random() < 0.5:  # a strap line, no full sentence
        since = rng.randint(1950, 2015)
        pieces.insert(4, f"<p>Welcome to {_E(shop)} - {_E(cats[-1].lower())} and more since {since}</p>")
    words = sum(len(re.sub(r"<[^>]+>", " ", p).split()) for p in pieces)
    title = f"{rng.choice(cats)} | {shop}"
    page = (
        f'<!DOCTYPE html>\n<html lang="en">\n{_head(title, charset, None)}\n<body>\n'
        + "\n".join(pieces)
        + "\n</body>\n</html>\n"
    )
    return page, words, title


SPAM_PRODUCTS = (
    "watches",
    "sunglasses",
    "handbags",
    "phone cases",
    "sneakers",
    "perfume",
    "headphones",
    "vitamins",
    "jerseys",
    "gift cards",
    "followers",
    "laptops",
)
SPAM_MODS = ("cheap", "best", "discount", "buy", "top", "replica", "free", "online", "sale", "wholesale", "new")


def _spam_html(rng: random.Random, charset: str) -> tuple[str, int, str]:
    product = rng.choice(SPAM_PRODUCTS)
    up = product.upper()
    kw = [f"{rng.choice(SPAM_MODS)} {product}" for _ in range(rng.randint(30, 70))]
    stuffing = " ".join(kw)
    shout = f"BUY CHEAP {up} NOW!!! CLICK HERE!!! BEST PRICE {up}!!!"
    lines = [shout] * rng.randint(4, 12)
    lines += [f"CLICK HERE to get FREE {up} today!!! Limited offer!!! Click here!!!"] * rng.randint(2, 6)
    tags = " | ".join(f"{m} {product}" for m in rng.sample(SPAM_MODS, 8))
    body = [
        f"<h1>CHEAP {up} BUY NOW BEST PRICE {up} DISCOUNT {up}</h1>",
        f"<p>{_E(stuffing)}</p>",
        *(f"<p><b>{_E(line)}</b></p>" for line in lines),
        f"<p>{_E(' '.join(rng.sample(kw, len(kw))))}</p>",
        f'<div class="tags">{_E(tags)}</div>',
        f'<p><a href="/go?offer={rng.randint(1000, 9999)}">CLICK HERE CLICK HERE CLICK HERE</a></p>',
    ]
    if rng.random() < 0.5:
        rng.shuffle(body)
    words = sum(len(re.sub(r"<[^>]+>", " ", b).split()) for b in body)
    title = f"Cheap {product} - buy {product} online - best {product} discount"
    page = (
        f'<!DOCTYPE html>\n<html lang="en">\n{_head(title, charset, None)}\n<body>\n<div class="content">\n'
        + "\n".join(body)
        + "\n</div>\n</body>\n</html>\n"
    )
    return page, words, title


SHORT_SENTENCES = (
    "Our shop will be closed on {weekday} for the public holiday. Thank you for your understanding.",
    "The {town} farmers' market has moved to the car park behind the library.",
    "This page has moved. Please update your bookmarks.",
    "Tickets for the {month} concert are now sold out.",
    "We are updating our website and will be back soon with new recipes and stories.",
    "The meeting on {weekday} evening has been cancelled because of the weather.",
    "Opening hours: nine until five, {weekday} to Saturday. Closed on Sundays.",
    "Thank you for signing up. Please check your inbox to confirm your address.",
    "The footpath to the old mill in {town} is closed for repairs until the end of {month}.",
    "Photos from the {town} summer fair are coming soon.",
)
