"""Planning the crawl: pages per category, crawl order with duplicates after their originals, and every page
generated and rendered (before anything is written)."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from gristmill_plugins.demo_data.article import Article
from gristmill_plugins.demo_data.categories import CATEGORIES, TOPICS
from gristmill_plugins.demo_data.english import make_article
from gristmill_plugins.demo_data.foreign import FOREIGN, _ascii, _foreign_article
from gristmill_plugins.demo_data.pages import (
    MIRROR_HOSTS,
    SCRAPER_SITES,
    SHORT_SENTENCES,
    SITE_NAMES,
    SITE_NAV,
    SPAM_MODS,
    Page,
    _add_pii,
    _boilerplate_html,
    _near_duplicate,
    _render,
    _spam_html,
)
from gristmill_plugins.demo_data.vocab import _base_context, _format, _host, _slug

if TYPE_CHECKING:
    from gristmill_plugins.demo_data import SyntheticCrawlConfig


def category_counts(config: SyntheticCrawlConfig) -> dict[str, int]:
    """Pages per category for ``config`` (largest remainder; every positive weight gets a page if it can)."""
    weights = config.weights.model_dump()
    total = sum(weights.values())
    raw = {c: config.pages * weights[c] / total for c in CATEGORIES}
    counts = {c: int(v) for c, v in raw.items()}
    order = list(CATEGORIES)
    left = config.pages - sum(counts.values())
    for c in sorted(order, key=lambda c: (-(raw[c] - counts[c]), order.index(c)))[:left]:
        counts[c] += 1
    for c in order:
        if weights[c] > 0 and counts[c] == 0:
            donor = max(order, key=lambda k: counts[k])
            if counts[donor] > 1:
                counts[donor] -= 1
                counts[c] += 1
    if counts["good"] == 0 and counts["exact_dup"] + counts["near_dup"] > 0:
        counts["good"] = counts["exact_dup"] + counts["near_dup"]
        counts["exact_dup"] = counts["near_dup"] = 0
    return counts


def _order_categories(counts: dict[str, int], rng: random.Random) -> list[tuple[str, int | None]]:
    """Categories in crawl order; each duplicate gets a good original (by index) placed before it."""
    base = [c for c in CATEGORIES if c not in ("exact_dup", "near_dup") for _ in range(counts[c])]
    rng.shuffle(base)
    items: list[list[Any]] = [[c, None] for c in base]
    good = [it for it in items if it[0] == "good"]
    dups = ["exact_dup"] * counts["exact_dup"] + ["near_dup"] * counts["near_dup"]
    rng.shuffle(dups)
    originals = rng.sample(good, len(dups)) if len(dups) <= len(good) else [rng.choice(good) for _ in dups]
    for cat, orig in zip(dups, originals, strict=True):
        pos = next(i for i, it in enumerate(items) if it is orig)
        items.insert(rng.randint(pos + 1, len(items)), [cat, orig])
    index = {id(it): i for i, it in enumerate(items)}
    return [(c, index[id(o)] if o is not None else None) for c, o in items]


def _plan(config: SyntheticCrawlConfig, seed: int) -> list[Page]:
    rng = random.Random(seed)
    counts = category_counts(config)
    order = _order_categories(counts, rng)
    pages: list[Page] = []
    langs = list(config.languages)
    rng.shuffle(langs)
    n_foreign = 0
    for number, (category, orig_index) in enumerate(order):
        prng = random.Random(rng.getrandbits(64))
        if category in ("good", "pii"):
            topic = prng.choice(TOPICS if category == "good" else TOPICS[:-1])
            article = make_article(topic, prng, config.min_words, config.max_words)
            site = prng.choice(SITE_NAMES[topic])
            page = Page(number, category, topic, _host(site), _slug(article.title), article=article)
            if category == "pii":
                page.pii = _add_pii(article, prng)
            _render(page, site, SITE_NAV[topic], prng)
        elif category in ("exact_dup", "near_dup"):
            assert orig_index is not None
            orig = pages[orig_index]
            assert orig.article is not None
            if category == "exact_dup":
                page = Page(
                    number,
                    category,
                    orig.sub,
                    prng.choice(MIRROR_HOSTS),
                    orig.slug,
                    body=orig.body,
                    charset=orig.charset,
                    words=orig.words,
                    dup_of=orig.number,
                    article=orig.article,
                )
            else:
                site = prng.choice(SCRAPER_SITES)
                page = Page(
                    number,
                    category,
                    orig.sub,
                    _host(site),
                    orig.slug,
                    dup_of=orig.number,
                    article=_near_duplicate(orig.article, prng),
                )
                _render(page, site, ("Home", "Trending", "Lifestyle", "Food", "Travel", "Contact"), prng)
            page.original = orig
        elif category == "non_english":
            lang = langs[n_foreign % len(langs)]
            n_foreign += 1
            article = _foreign_article(lang, prng)
            spec = FOREIGN[lang]
            site, host = prng.choice(spec["sites"])
            charset = "iso-8859-1" if lang != "ru" and prng.random() < config.latin1_share else "utf-8"
            slug = _slug(_ascii(article.title)) if _ascii(article.title).isascii() else "stranitsa"
            page = Page(number, category, lang, host, slug, charset=charset, lang=lang, article=article)
            _render(page, site, spec["nav"], prng, footer=spec["footer"], by=spec["by"])
        elif category == "short":
            ctx = _base_context(prng)
            text = _format(prng.choice(SHORT_SENTENCES), ctx)
            title = prng.choice(("Notice", "Update", "News", "Announcement", "Please note"))
            article = Article(title=title, sections=[(None, [text])], topic="short")
            site = prng.choice(SITE_NAMES[prng.choice(TOPICS)])
            page = Page(number, category, "page", _host(site), _slug(title), article=article)
            _render(page, site, ("Home", "News", "About", "Contact"), prng)
        else:
            maker = _boilerplate_html if category == "boilerplate" else _spam_html
            text, words, title = maker(prng, "utf-8")
            host = (
                _host(title.split("|")[-1])
                if category == "boilerplate"
                else f"{prng.choice(SPAM_MODS)}-{_slug(title.split()[1])}-{prng.randint(10, 99)}.example"
            )
            page = Page(number, category, "page", host, _slug(title), body=text.encode("utf-8"), words=words)
        pages.append(page)
    return pages
