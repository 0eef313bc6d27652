"""Arithmetic word problems with worked answers (each ends in ``The answer is N.``) and the maths article.

Every problem is verifiable: the number after ``The answer is`` is the exact result of the sums in it.
"""

import random
from typing import Any

from gristmill_plugins.demo_data.article import Article
from gristmill_plugins.demo_data.vocab import FIRST_NAMES, WEEKDAYS, _base_context, _format

MATH_ITEMS = (
    ("apples", "basket"),
    ("stickers", "album"),
    ("marbles", "jar"),
    ("pencils", "box"),
    ("books", "shelf"),
    ("cookies", "tin"),
    ("stamps", "folder"),
    ("shells", "bucket"),
    ("buttons", "drawer"),
    ("cards", "box"),
    ("oranges", "crate"),
    ("crayons", "pot"),
    ("beads", "bag"),
    ("postcards", "album"),
)
SHOPS = ("market", "corner shop", "school fair", "bakery", "bookshop", "garden centre")
SETTINGS = (
    "on the way home from school",
    "during the summer holidays",
    "on a rainy Saturday morning",
    "before the school trip",
    "for a class project",
    "at the end of the week",
    "after a long walk in the park",
)
MATH_INTRO = (
    "These practice problems are written for students who are learning to turn everyday situations into simple sums.",
    "Try each question on your own before reading the worked answer underneath it.",
    "The numbers are kept small on purpose, so that you can focus on the reasoning rather than the arithmetic.",
    "A good habit is to read each problem twice and to underline the numbers and the question being asked.",
    "If you get stuck, draw a quick picture or use small objects such as buttons or coins to act out the story.",
    "Each worked answer explains which operation to use and why, and then gives the final number.",
    "Teachers are welcome to print this page and use the problems in class.",
    "Parents often tell us that working through a few problems together at the kitchen table is more fun than "
    "expected.",
    "Word problems are a great way to practise reading carefully as well as doing the sums.",
    "Checking your answer is just as important as finding it, so always ask whether the number makes sense.",
    "This set was put together by {full_name}, who has taught primary maths in {town} for {n} years.",
    "The hardest part of a word problem is usually deciding what the question wants, not doing the sum itself.",
)
MATH_CLOSING = (
    "When you have finished, try writing a problem of your own and swapping it with a friend.",
    "We add a new set of questions every month, so come back soon for more practice.",
    "Remember that making mistakes is part of learning, and every wrong answer shows you something useful.",
    "If these felt easy, try changing the numbers in each question and solving them again without a pencil.",
    "Reading the question slowly is half the work, and the sums themselves are usually the easy part.",
)
MATH_TITLES = (
    "{k} Word Problems for Young Learners",
    "Everyday Maths: Practice Problems with Worked Answers",
    "Maths Practice: Shopping, Sharing and Counting",
    "Simple Word Problems with Step-by-Step Answers",
    "Weekend Maths Challenge: {k} Questions",
    "Word Problems for the Kitchen Table",
)
MATH_TIPS = (
    "Drawing a quick sketch of the story often shows straight away which operation is needed.",
    "It is fine to use your fingers, a number line or a handful of counters while you are still learning.",
    "Try explaining your answer out loud to someone else, because teaching is one of the best ways to learn.",
    "Estimating first, even roughly, helps you notice when an answer is far too big or far too small.",
    "Keep your working neat and in order, so that you can find any mistake quickly.",
    "If a question seems confusing, cross out the details that do not matter and then look at it again.",
    "Using real objects from around the house makes the numbers feel much less abstract.",
    "Short and regular practice is better than one long session once a month.",
    "Mental arithmetic gets faster with time, so do not worry if it feels slow at the beginning.",
    "Some children like to invent silly stories for each sum, which makes the practice more memorable.",
    "When you have an answer, read the question again and check that you answered what was asked.",
    "Games with dice and playing cards are a fun way to practise the same skills away from the page.",
)
# group: (heading, problem kinds, introductory sentences, checking sentences)
MATH_GROUPS: tuple[tuple[str, tuple[int, ...], tuple[str, ...], tuple[str, ...]], ...] = (
    (
        "Adding up",
        (0, 1, 9),
        (
            "The questions in this section are all about putting amounts together.",
            "Words such as more, altogether and in total are often a sign that we need to add.",
            "Addition is usually the first kind of sum that children meet, and it turns up everywhere in daily life.",
            "Before you start, try to guess roughly how big each answer will be.",
        ),
        (
            "A quick check is to make sure the total is larger than both of the numbers we started with.",
            "It makes sense that the answer is bigger, because something was added to the amount at the start.",
            "Counting on from the larger number is a handy way to check an addition like this in your head.",
        ),
    ),
    (
        "Taking away",
        (2, 3),
        (
            "These questions are about taking something away and finding out what is left.",
            "Look out for words such as left, remain, fewer and gave away, which usually mean subtraction.",
            "Subtraction is the opposite of addition, so every answer here can be checked by adding.",
        ),
        (
            "To check the answer, add the part that was taken away back on and see whether you reach the starting "
            "number.",
            "The answer has to be smaller than the number we started with, because some of them went away.",
        ),
    ),
    (
        "Equal groups",
        (4, 5, 10),
        (
            "In this section every group has the same size, which is exactly when multiplication helps.",
            "Rows of chairs, packs of cards and the sides of a garden are all good examples of equal parts.",
            "If you know your times tables, these questions should not take long at all.",
        ),
        (
            "Multiplication is really a quick way of adding the same number again and again.",
            "You could also check it by adding one group at a time, although that takes a good deal longer.",
        ),
    ),
    (
        "Sharing and dividing",
        (6, 12),
        (
            "Division is about sharing fairly or about splitting a total into equal groups.",
            "Each of these questions asks how many are in one group, or how many groups we can make.",
            "Division is the opposite of multiplication, so a times table can help you check each answer.",
        ),
        (
            "To check, multiply the answer by the number of groups and make sure you get back to the total.",
            "Sharing equally means that nobody gets more than anybody else and nothing is left over.",
        ),
    ),
    (
        "Shopping and money",
        (8, 13),
        (
            "Money problems are a good way to practise the sums that we all need when we go shopping.",
            "Keep track of what was paid, what was spent and what should come back as change.",
            "It often helps to imagine that you are standing at the till with the coins in your hand.",
        ),
        (
            "Shopkeepers often check change by counting up from the price to the amount that was paid.",
            "Saying the amounts out loud, as if you were in a real shop, makes mistakes much easier to spot.",
        ),
    ),
    (
        "Two-step problems",
        (7, 11),
        (
            "The last questions need two steps, so read them carefully before you start.",
            "Write down the answer to the first step, because you will need it for the second one.",
            "Many real problems work like this, with one small sum leading to the next.",
        ),
        (
            "Two-step problems are much easier when the result of the first step is written down before the second.",
            "Breaking a long question into small pieces is a skill that helps far beyond maths lessons.",
        ),
    ),
)


def _math_problem(kind: int, rng: random.Random, ctx: dict[str, Any]) -> str:
    """One word problem with a worked answer ending in ``The answer is N.``."""
    name = rng.choice(FIRST_NAMES)
    other = rng.choice([n for n in FIRST_NAMES if n != name])
    item, holder = rng.choice(MATH_ITEMS)
    setting = rng.choice(SETTINGS)
    if kind == 0:
        a, b = rng.randint(3, 40), rng.randint(2, 30)
        return (
            f"{name} has {a} {item} at home and buys {b} more at the {rng.choice(SHOPS)} {setting}. How many "
            f"{item} does {name} have now? {name} started with {a} {item} and then got {b} more, so we add the "
            f"two numbers together: {a} + {b} = {a + b}. The answer is {a + b}."
        )
    if kind == 1:
        a, b = rng.randint(12, 60), rng.randint(8, 45)
        return (
            f"On {rng.choice(WEEKDAYS)}, {name} read {a} pages of a new library book, and on the next day "
            f"{name} read another {b} pages. How many pages did {name} read over the two days? To find the "
            f"total we add the pages from each day: {a} + {b} = {a + b}. The answer is {a + b}."
        )
    if kind == 2:
        a = rng.randint(15, 80)
        b = rng.randint(3, a - 2)
        return (
            f"A {holder} in the classroom holds {a} {item}. {name} gives {b} of them to {other} {setting}. How "
            f"many {item} are left in the {holder}? Giving some away makes the number smaller, so we subtract "
            f"the ones that were given away: {a} - {b} = {a - b}. The answer is {a - b}."
        )
    if kind == 3:
        a = rng.randint(20, 55)
        b = rng.randint(4, a - 5)
        return (
            f"There were {a} people on a bus when it left the station in {ctx['town']}. At the first stop, {b} "
            f"people got off and nobody got on. How many people were still on the bus? We take away the people "
            f"who left the bus: {a} - {b} = {a - b}. The answer is {a - b}."
        )
    if kind == 4:
        a, b = rng.randint(3, 12), rng.randint(4, 15)
        return (
            f"For the school concert, the caretaker puts out {a} rows of chairs in the hall, and each row has "
            f"{b} chairs. How many chairs are there in total? Every row has the same number of chairs, so we can "
            f"multiply instead of adding them one by one: {a} × {b} = {a * b}. The answer is {a * b}."
        )
    if kind == 5:
        a, b = rng.randint(2, 9), rng.randint(3, 12)
        return (
            f"{name} buys {a} packs of {item} {setting}, and each pack contains {b} {item}. How many {item} "
            f"does {name} buy altogether? Since every pack is the same size, we multiply the number of packs by "
            f"the size of each pack: {a} × {b} = {a * b}. The answer is {a * b}."
        )
    if kind == 6:
        b, q = rng.randint(2, 8), rng.randint(2, 12)
        return (
            f"{name} has {b * q} {item} and wants to share them equally among {b} friends. How many {item} "
            f"does each friend get? Sharing equally means dividing the total by the number of friends: "
            f"{b * q} ÷ {b} = {q}. The answer is {q}."
        )
    if kind == 7:
        a, b, c = rng.randint(10, 40), rng.randint(5, 30), rng.randint(2, 6)
        return (
            f"A small bakery in {ctx['town']} sells {a} loaves of bread in the morning and {b} loaves in the "
            f"afternoon. Each loaf costs {c} dollars. How much money does the bakery take for bread that day? "
            f"First we find how many loaves were sold: {a} + {b} = {a + b}. Then we multiply by the price of "
            f"one loaf: {a + b} × {c} = {(a + b) * c}. The answer is {(a + b) * c}."
        )
    if kind == 8:
        note = rng.choice((10, 20, 50))
        a = rng.randint(2, note - 1)
        return (
            f"{name} buys a book about dinosaurs that costs {a} dollars and pays with a {note} dollar note. How "
            f"much change should {name} get back? The change is the difference between the note and the price "
            f"of the book: {note} - {a} = {note - a}. The answer is {note - a}."
        )
    if kind == 9:
        a, b = rng.randint(15, 90), rng.randint(5, 25)
        return (
            f"A train journey to {ctx['town']} takes {a} minutes, and the walk from the station to the museum "
            f"takes another {b} minutes. How many minutes does the whole trip take? We add the two parts of the "
            f"journey together: {a} + {b} = {a + b}. The answer is {a + b}."
        )
    if kind == 10:
        a, b = rng.randint(4, 20), rng.randint(2, 12)
        return (
            f"A rectangular vegetable garden is {a} metres long and {b} metres wide. How many metres of fencing "
            f"are needed to go all the way around it? The two long sides together make {2 * a} metres and the "
            f"two short sides make {2 * b} metres, so we add them: {2 * a} + {2 * b} = {2 * a + 2 * b}. "
            f"The answer is {2 * a + 2 * b}."
        )
    if kind == 11:
        a, b, c = rng.randint(5, 12), rng.randint(2, 9), rng.randint(2, 10)
        return (
            f"{name} is {a} years old, and {other} is {b} years older. How old will {other} be in {c} years? "
            f"First we find the age of {other} today: {a} + {b} = {a + b}. Then we add the {c} years that still "
            f"have to pass: {a + b} + {c} = {a + b + c}. The answer is {a + b + c}."
        )
    if kind == 12:
        a, w = rng.randint(3, 15), rng.randint(4, 12)
        return (
            f"{name} saves {a} dollars every week from helping in the garden. How many weeks will it take to "
            f"save {a * w} dollars for a new bicycle? We divide the goal by the amount that is saved each week: "
            f"{a * w} ÷ {a} = {w}. The answer is {w}."
        )
    b, c = rng.randint(2, 6), rng.randint(2, 5)
    a = b * c + rng.randint(1, 20)
    return (
        f"{name} has {a} dollars and buys {b} notebooks for school that cost {c} dollars each. How much money "
        f"does {name} have left? The notebooks cost {b} × {c} = {b * c} dollars in total. Then we subtract that "
        f"from the money {name} had at the start: {a} - {b * c} = {a - b * c}. The answer is {a - b * c}."
    )


def _math_article(rng: random.Random, target: int) -> Article:
    """Intro, then sections of word problems grouped by operation (each with prose and checks), then a closing."""
    ctx = _base_context(rng)
    intro_pool = list(MATH_INTRO)
    rng.shuffle(intro_pool)
    intro = [_format(t, ctx) for t in intro_pool[: rng.randint(4, 6)]]
    words = sum(len(s.split()) for s in intro)
    groups = list(MATH_GROUPS)
    rng.shuffle(groups)
    sections: list[tuple[str | None, list[str]]] = [(None, [" ".join(intro)])]
    n_problems = 0
    tips = list(MATH_TIPS)
    rng.shuffle(tips)
    for heading, kinds, intros, checks in groups:
        if words >= target - 120 and n_problems >= 3:
            break
        lead = [*rng.sample(intros, rng.randint(2, 3)), tips.pop()]
        rng.shuffle(lead)
        paragraphs = [" ".join(lead)]
        picked = rng.sample(kinds, min(len(kinds), rng.randint(1, 2)))
        for kind, check in zip(picked, rng.sample(checks, len(picked)), strict=True):
            paragraphs.append(f"{_math_problem(kind, rng, ctx)} {check}")
            n_problems += 1
        paragraphs[-1] += " " + tips.pop()
        words += sum(len(p.split()) for p in paragraphs)
        sections.append((heading, paragraphs))
    closing = [_format(t, ctx) for t in rng.sample(MATH_CLOSING, 3)]
    sections.append((rng.choice(("Keep practising", "What next?", "A final word")), [" ".join(closing)]))
    title = _format(rng.choice(MATH_TITLES), {**ctx, "k": n_problems})
    rest = [_format(t, ctx) for t in intro_pool[6:]]
    return Article(title=title, sections=sections, topic="math", unused=rest)
