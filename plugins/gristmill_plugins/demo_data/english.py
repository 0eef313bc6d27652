"""English articles: generic sentences, paraphrasing, anecdotes and :func:`make_article`."""

import random
from typing import Any

from gristmill_plugins.demo_data.article import Article
from gristmill_plugins.demo_data.english_topics import Sections
from gristmill_plugins.demo_data.english_topics.cooking import COOK_METHOD, COOK_TITLES, COOKING, DISHES, EVENTS
from gristmill_plugins.demo_data.english_topics.gardening import GARDEN_PLANTS, GARDEN_SOIL, GARDEN_TITLES, GARDENING
from gristmill_plugins.demo_data.english_topics.history import (
    BUILDINGS,
    DISASTERS,
    HISTORY,
    HISTORY_TITLES,
    INDUSTRIES,
    SAINTS,
)
from gristmill_plugins.demo_data.english_topics.science import (
    SCIENCE,
    SCIENCE_GENERIC,
    SCIENCE_HEADINGS,
    SCIENCE_OPENERS,
    SCIENCE_TITLES,
)
from gristmill_plugins.demo_data.english_topics.travel import (
    FESTIVALS,
    FOODS,
    PLACE_ADJ,
    SEASONS,
    TRANSPORT,
    TRAVEL,
    TRAVEL_TITLES,
)
from gristmill_plugins.demo_data.maths import _math_article
from gristmill_plugins.demo_data.vocab import (
    _base_context,
    _cap,
    _expand,
    _format,
    _paragraphs,
    _title,
    _town,
    _words,
)

# Generic sentences. ANY fits every article, HOWTO only practical guides (gardening, cooking, travel),
# CLOSING ends an article. ``[a|b|c]`` marks alternatives; one is picked per use (see :func:`_expand`).
GENERIC_ANY = (
    "Most of what follows comes from [conversations|long chats|letters and conversations] with readers, "
    "neighbours and a handful of [patient|generous|knowledgeable] local experts.",
    "We have [updated|revised|expanded] this article several times since {year}, as readers kept sending us "
    "[useful|helpful|thoughtful] corrections.",
    "Many of the questions we [receive|get|are sent] about {subject} come up again and again, so we [answer|try "
    "to answer|tackle] the most common ones here.",
    "Some of the older books on {subject} are still worth [reading|a look|seeking out], even if a few of their "
    "ideas have since been [replaced|overturned|improved upon].",
    "It is easy to find [conflicting|contradictory|muddled] claims online, which is why we [prefer|try] to explain "
    "the reason behind each point.",
    "Our readers in {region} have been [especially|wonderfully|very] generous with their stories, and [several|a "
    "number|some] of them appear below.",
    "Talking to people who know the subject well is [often|usually|nearly always] more rewarding than reading yet "
    "another article.",
    "Last {month}, we asked our readers to share their own experiences with {subject}, and more than {n2} of "
    "them [replied|wrote back|got in touch].",
    "The replies were [encouraging|a delight to read|heartening], and many of them were full of [vivid|practical|"
    "charming], down-to-earth detail.",
    "Local libraries and community groups are an [underrated|overlooked|undervalued] source of help, and they "
    "rarely charge anything.",
    "Looking back over the past {n3} years, it is [remarkable|striking|fascinating] how much has changed and how "
    "much has stayed the same.",
    "One reader from {town} told us that the best way into {subject} is simply to ask [plenty of|lots of|endless] "
    "questions.",
    "Take [photographs|pictures|photos] and notes as you go, because it is surprisingly hard to remember the "
    "details a year later.",
    "It is also worth checking whether your council or a local charity runs free [talks|evening classes|"
    "workshops] on the subject.",
)
GENERIC_HOWTO = (
    "There is no single right way to approach {subject}, but a few simple habits make a [surprisingly|"
    "remarkably|very] large difference.",
    "When {name} first wrote to us about {subject}, the question was a simple one: where should a complete "
    "beginner [start|begin]?",
    "{full_name}, who has lived in {town} for {n} years, says the most common mistake is trying to do "
    "[everything at once|too much too soon|it all in one go].",
    "It helps to keep a small notebook and to write down what worked, what did not and what you would "
    "[change|do differently] next time.",
    "None of this needs [expensive|fancy|special] equipment, and most of it can be done on a small budget with a "
    "little planning.",
    "Everyone learns at a different pace, so there is no reason to feel [discouraged|disheartened|downcast] if "
    "progress seems slow.",
    "A friend in {town} put it well when she said that the best time to start is [usually|nearly always] today.",
    "The advice here is general, and local conditions can make a real difference to the results you [get|see].",
    "Small improvements add up over time, and after a [season or two|few months|year or so] the difference is "
    "usually obvious.",
    "If something goes wrong, try to work out why before changing [several|lots of|many] things at the same time.",
    "There will always be bad days, but they tend to teach more than the days when everything goes to plan.",
    "It is worth setting aside a regular time each week, even if it is only an hour on a {weekday} "
    "[evening|morning|afternoon].",
    "Experience matters more than theory here, and the only way to gain it is to start and [keep going|stick "
    "with it|keep at it].",
    "Another reader pointed out that mistakes are [much|far] cheaper when they are made on a small scale.",
    "As with most things, the basics matter far more than any clever trick or [special|expensive|new] product.",
    "Good habits are easier to keep when they are shared, so consider finding a friend with the same "
    "[interest|enthusiasm].",
    "Anyone can learn the basics in a few weeks, although mastering them takes [rather|a good deal|quite a bit] "
    "longer.",
    "{name} admits to having got almost everything wrong the first time, which is a comfort to the rest of us.",
)
CLOSING_ANY = (
    "We would love to hear from you, and we read every message that arrives, even if we cannot reply to all of them.",
    "Thank you to everyone in {town} and beyond who shared their time and their stories with us.",
    "If you have a story or a photograph to add, we would be [delighted|glad|happy] to include it in the next update.",
    "There is always more to discover, and we will keep adding to this page as new material comes to light.",
    "If you spot a mistake, please [let us know|drop us a line] so that we can put it right.",
)
CLOSING_HOWTO = (
    "If you only remember one thing from this page, remember that patience [usually|nearly always] pays off in "
    "the end.",
    "Above all, try to enjoy the [process|journey|experience] rather than worrying about getting every detail perfect.",
    "In the end, {subject} is less about following rules and more about paying [close|careful] attention.",
    "We asked {full_name} for one final piece of advice, and the answer was short: keep it simple.",
)
CLOSING_HEADINGS = ("Final thoughts", "Before you go", "A last word", "In short")

# Light paraphrases applied at random to every English sentence, so that pages built from the same
# templates do not share long runs of words. Each swap keeps the sentence grammatical.
PARAPHRASES = (
    (" often ", " frequently "),
    (" usually ", " normally "),
    (" quickly ", " fast "),
    (" simply ", " just "),
    (" very ", " really "),
    (" begin ", " start "),
    (" large ", " big "),
    (" almost ", " nearly "),
    (" obvious", " clear"),
    (" think ", " believe "),
    (" wonderful ", " lovely "),
    (" friendly ", " welcoming "),
    (" excellent", " superb"),
    (" whole ", " entire "),
    (" several ", " a few "),
    (" a lot of ", " plenty of "),
    (" perhaps ", " maybe "),
    (" enough ", " sufficient "),
    (" rather than ", " instead of "),
    (" especially ", " particularly "),
    (" roughly ", " approximately "),
    (" probably ", " most likely "),
    (" surprisingly ", " remarkably "),
    (" still ", " even now "),
    (" people ", " folk "),
)
OPENERS = ("In practice, ", "Of course, ", "As a rule, ", "On the whole, ", "Generally speaking, ")
OPENABLE = {"The", "A", "Most", "Many", "It", "This", "Some", "If", "When", "Our", "We", "Any", "Every", "Once"}


def _vary(sentence: str, rng: random.Random, openers: bool = True) -> str:
    """Apply a few random paraphrases (and sometimes an opener) to one sentence."""
    for old, new in PARAPHRASES:
        if old in sentence and rng.random() < 0.5:
            sentence = sentence.replace(old, new, 1)
    first = sentence.split(" ", 1)[0]
    if openers and first in OPENABLE and rng.random() < 0.12:
        sentence = rng.choice(OPENERS) + sentence[:1].lower() + sentence[1:]
    return sentence


# Anecdotes: "<when>, <event>, <result>." Many combinations, so they make each page its own.
ANECDOTES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "gardening": (
        (
            "Last {month}",
            "In the spring of {year}",
            "One wet {weekday}",
            "Early in the season",
            "After a long dry spell",
            "Towards the end of {month}",
            "A couple of years ago",
        ),
        (
            "{name} tried growing {plant} in old buckets by the back door",
            "we moved the {plant} to a sunnier corner",
            "a neighbour gave us a tray of spare {plant} seedlings",
            "we sowed a second row of {plant} a month later",
            "{name} planted {companion} between the rows",
            "we dug a new bed beside the shed",
            "we tried a homemade garlic spray against {pest}",
            "we covered the young plants with fleece overnight",
            "we swapped half our seed potatoes for a bag of home-made compost",
        ),
        (
            "and the difference was obvious within a fortnight",
            "which worked better than we had hoped",
            "although the slugs found them first",
            "and the crop was the best we have had",
            "but we will not bother with it again",
            "and several visitors asked how we had done it",
            "which saved a good deal of watering",
            "and it cost almost nothing",
        ),
    ),
    "cooking": (
        (
            "Last {month}",
            "One cold {weekday}",
            "For a birthday in {year}",
            "When friends came round last winter",
            "On a busy weeknight",
            "The first time we tested this",
            "During a long weekend in {month}",
        ),
        (
            "we made the {dish} with {sub_to} instead of {sub_from}",
            "{name} doubled the quantities for a party",
            "we added an extra pinch of {spice}",
            "we cooked the {dish} a day ahead",
            "{name} tried a version with half the butter",
            "we served the {dish} with roasted vegetables",
            "we made a small batch just for the freezer",
            "we let the children take charge of the {dish}",
            "we cooked the {dish} on a camping stove",
        ),
        (
            "and nobody noticed the difference",
            "and there was not a crumb left",
            "which turned out rather well",
            "although it needed a little more salt",
            "and it has been requested ever since",
            "which saved a good deal of time",
            "and the leftovers made a fine lunch the next day",
        ),
    ),
    "history": (
        (
            "In {year_a}",
            "During the winter of {year_a}",
            "Some time around {year_a}",
            "In the summer of {year_a}",
            "Early in {year_a}",
            "Late in {year_a}",
        ),
        (
            "a travelling preacher drew a crowd of hundreds to the green",
            "the {industry} workers went on strike for better pay",
            "a new chapel was built on Mill Street",
            "the first gas lamps were lit along the high street",
            "a fair was held to raise money for a new fire engine",
            "the town council bought the old market rights",
            "a group of families left {Town} to start new lives overseas",
            "the river froze so hard that people skated beneath the bridge",
            "a travelling circus set up its tents in the water meadows",
        ),
        (
            "an event still mentioned in the parish records",
            "and the local newspaper reported it at length",
            "which caused a good deal of argument at the time",
            "and the memory lived on for generations",
            "according to a letter now kept in the archive",
            "although few details have survived",
            "and a small plaque now marks the spot",
        ),
    ),
    "travel": (
        (
            "On the {ordinal} day",
            "One {weekday} morning",
            "Late one afternoon",
            "On a grey, windy morning",
            "Early on our {ordinal} day",
            "The next day",
            "Halfway through the week",
        ),
        (
            "we hired bicycles in {town}",
            "we caught the early {transport} along the coast",
            "we took a picnic up to the headland",
            "we joined a guided walk from the harbour",
            "we got lost on the moor above {town}",
            "we spent a morning in the little museum at {town}",
            "we watched the fishing boats come in",
            "we sheltered from a storm in a tiny chapel",
            "we followed the old drovers' road inland",
            "we found a secondhand bookshop in a converted barn",
        ),
        (
            "and it turned out to be the highlight of the trip",
            "which was far better than we had expected",
            "and we would happily do it again",
            "although our legs ached for the rest of the day",
            "and the views along the way were spectacular",
            "and the owner of the cafe gave us directions back",
            "which gave us a real sense of how people live here",
            "and we were back in time for supper",
        ),
    ),
}
ORDINALS = ("second", "third", "fourth", "fifth")


def _anecdotes(topic: str, ctx: dict[str, Any], rng: random.Random, k: int) -> list[str]:
    """Up to ``k`` distinct anecdote sentences for ``topic`` (none for topics without anecdotes)."""
    if topic not in ANECDOTES:
        return []
    whens, events, results = ANECDOTES[topic]
    k = min(k, len(events))
    out = []
    for when, event, result in zip(
        rng.sample(whens, min(k, len(whens))) * 2,
        rng.sample(events, k),
        rng.sample(results, min(k, len(results))) * 2,
        strict=False,
    ):
        slots = {**ctx, "year_a": rng.randint(1720, 1890), "ordinal": rng.choice(ORDINALS)}
        out.append(_format(f"{when}, {event}, {result}.", slots))
    return out


def _topic_context(topic: str, rng: random.Random) -> tuple[dict[str, Any], Sections, tuple[str, ...], str]:
    """Slots, sections, generic sentences and title template for one article on ``topic``."""
    ctx = _base_context(rng)
    if topic == "gardening":
        plant, sun, spacing, weeks, pest, companion, sow = rng.choice(GARDEN_PLANTS)
        ctx.update(
            plant=plant,
            Plant=_cap(plant),
            sun=sun,
            spacing=spacing,
            weeks=weeks,
            pest=pest,
            companion=companion,
            sow_month=sow,
            soil=_expand(rng.choice(GARDEN_SOIL), rng),
            subject=f"growing {plant}",
        )
        return ctx, GARDENING, GENERIC_ANY + GENERIC_HOWTO, rng.choice(GARDEN_TITLES)
    if topic == "cooking":
        dish, main, others, minutes, serves, spice, (sub_from, sub_to), kind = rng.choice(DISHES)
        ctx.update(
            dish=dish,
            Dish=_title(dish),
            main=main,
            others=others,
            minutes=minutes,
            serves=serves,
            spice=spice,
            sub_from=sub_from,
            sub_to=sub_to,
            keep_days=rng.randint(2, 4),
            event=rng.choice(EVENTS),
            temp=rng.choice((170, 180, 190, 200)),
            subject=f"cooking {dish}",
        )
        sections = tuple((h, t or COOK_METHOD[kind]) for h, t in COOKING)
        return ctx, sections, GENERIC_ANY + GENERIC_HOWTO, rng.choice(COOK_TITLES)
    if topic == "history":
        mill_year = rng.randint(1760, 1830)
        industry = rng.choice(INDUSTRIES)
        ctx.update(
            Town=ctx["town"],
            founded=rng.randint(1080, 1650),
            industry=industry,
            Industry=_cap(industry),
            mill_year=mill_year,
            mills=rng.randint(3, 14),
            pop_then=rng.randint(8, 40) * 100,
            rail_year=rng.randint(1838, 1885),
            building=rng.choice(BUILDINGS).format(saint=rng.choice(SAINTS)),
            disaster=rng.choice(DISASTERS),
            disaster_year=rng.randint(mill_year + 5, 1910),
            school_year=rng.randint(1820, 1880),
            closed_year=rng.randint(1955, 1992),
            pop_now=rng.randint(30, 250) * 100,
            bridge_year=rng.randint(1790, 1900),
            diary_year=rng.randint(mill_year + 5, 1910),
            river_name=ctx["River"][4:],
            subject=f"the history of {ctx['town']}",
        )
        return ctx, HISTORY, GENERIC_ANY, rng.choice(HISTORY_TITLES)
    if topic == "travel":
        place = rng.choice(
            (f"the {rng.choice(PLACE_ADJ)} Coast", f"the {_town(rng)} Valley", f"the {rng.choice(PLACE_ADJ)} Hills")
        )
        ctx.update(
            place=place,
            Place=_cap(place),
            days=rng.randint(3, 10),
            season=rng.choice(SEASONS),
            transport=rng.choice(TRANSPORT),
            km=rng.randint(6, 22),
            food=rng.choice(FOODS),
            festival=rng.choice(FESTIVALS),
            subject=f"travelling in {place}",
        )
        return ctx, TRAVEL, GENERIC_ANY, rng.choice(TRAVEL_TITLES)
    subject, question, facts = rng.choice(SCIENCE)
    ctx.update(subject=subject, Subject=_title(subject), question=question, Question=question)
    keep = sorted(rng.sample(range(len(facts)), rng.randint(5, len(facts))))
    kept = [facts[i] for i in keep]
    cut = sorted(rng.sample(range(2, len(kept)), 2))
    heads = rng.sample(SCIENCE_HEADINGS, 3)
    sections: Sections = (
        ((), (rng.choice(SCIENCE_OPENERS), *kept[:2])),
        ((heads[0],), tuple(kept[2 : cut[0] + 1]) + tuple(rng.sample(SCIENCE_GENERIC, 2))),
        ((heads[1],), tuple(kept[cut[0] + 1 :]) + tuple(rng.sample(SCIENCE_GENERIC, 2))),
        ((heads[2],), tuple(rng.sample(SCIENCE_GENERIC, 3))),
    )
    return ctx, sections, GENERIC_ANY, rng.choice(SCIENCE_TITLES)


def make_article(topic: str, rng: random.Random, min_words: int = 250, max_words: int = 800) -> Article:
    """Generate one English article on ``topic`` (one of :data:`TOPICS`) of roughly ``min..max`` words.

    Sections keep their templates in reading order; sentences are dropped at random (at least two stay per
    section) until the body fits the drawn length, a few generic sentences are mixed in and every sentence
    gets light random paraphrasing, so two articles on the same subject still differ.
    """
    target = rng.randint(min_words, max_words)
    if topic == "math":
        return _math_article(rng, target)
    ctx, spec, generic_pool, title_t = _topic_context(topic, rng)
    generic = list(generic_pool)
    rng.shuffle(generic)
    anecdotes = _anecdotes(topic, ctx, rng, 8)
    story = set(anecdotes)  # anecdotes already open with a time phrase: no extra opener
    plan: list[tuple[str | None, list[str]]] = []
    seen: set[str] = set()
    for i, (heads, templates) in enumerate(spec):
        # each page uses only part of every section (order kept), so pages on one subject still differ
        share = max(2, round(len(templates) * rng.uniform(0.4, 0.7))) if i else len(templates)
        picked = sorted(rng.sample(range(len(templates)), min(share, len(templates))))
        sentences = [_format(templates[j], ctx, rng) for j in picked]
        for _ in range(rng.randint(0, 2) if i else 1):
            if generic:
                sentences.insert(rng.randint(1, len(sentences)), _format(generic.pop(), ctx, rng))
        for _ in range(rng.randint(1, 2) if i else 0):
            if anecdotes:
                sentences.insert(rng.randint(1, len(sentences)), anecdotes.pop())
        sentences = [s for s in sentences if not (s in seen or seen.add(s))]
        plan.append((_format(rng.choice(heads), ctx) if heads else None, sentences))
    closing_pool = CLOSING_ANY + (CLOSING_HOWTO if topic in ("gardening", "cooking", "travel") else ())
    closing = [_format(t, ctx, rng) for t in rng.sample(closing_pool, rng.randint(2, 3))]
    total = sum(_words(s) for _, ss in plan for s in ss) + sum(_words(s) for s in closing)
    # drop whole middle sections while far too long, then single sentences
    middle = list(range(1, len(plan)))
    rng.shuffle(middle)
    dropped_sections = set()
    for si in middle:
        size = sum(_words(s) for s in plan[si][1])
        if total - size >= target * 1.1 and len(plan) - len(dropped_sections) > 3:
            dropped_sections.add(si)
            total -= size
    plan = [p for si, p in enumerate(plan) if si not in dropped_sections]
    candidates = [(si, k) for si, (_, ss) in enumerate(plan) for k in range(len(ss)) if si or k]
    rng.shuffle(candidates)
    dropped: set[tuple[int, int]] = set()
    for si, k in candidates:
        if total <= target:
            break
        if sum((si, kk) not in dropped for kk in range(len(plan[si][1]))) <= 2:
            continue
        dropped.add((si, k))
        total -= _words(plan[si][1][k])
    unused = [s for si, (_, ss) in enumerate(plan) for k, s in enumerate(ss) if (si, k) in dropped]
    sections: list[tuple[str | None, list[str]]] = []
    for si, (head, ss) in enumerate(plan):
        kept = [_vary(s, rng, s not in story) for k, s in enumerate(ss) if (si, k) not in dropped]
        sections.append((head, _paragraphs(kept, rng, 2, 4)))
    sections.append((rng.choice((*CLOSING_HEADINGS, None)), [" ".join(_vary(s, rng, False) for s in closing)]))
    return Article(title=_format(title_t, ctx), sections=sections, topic=topic, unused=unused)
