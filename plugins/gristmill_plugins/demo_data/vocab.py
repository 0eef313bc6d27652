"""Shared vocabulary (people, towns, rivers, months) and the small text helpers every page maker uses."""

import random
import re
from typing import Any

FIRST_NAMES = (
    "Maria",
    "James",
    "Aisha",
    "Tom",
    "Priya",
    "Lucas",
    "Hannah",
    "Omar",
    "Elena",
    "David",
    "Grace",
    "Samuel",
    "Yuki",
    "Fatima",
    "Daniel",
    "Chloe",
    "Ben",
    "Nadia",
    "Leo",
    "Sofia",
    "Ethan",
    "Amara",
    "Noah",
    "Ruth",
    "Kofi",
    "Isabel",
    "Marcus",
    "Lina",
    "Peter",
    "Mei",
    "Carlos",
    "Olivia",
    "Ivan",
    "Zara",
    "George",
    "Anna",
    "Hugo",
    "Ingrid",
    "Raj",
    "Clara",
    "Felix",
    "Rosa",
    "Tariq",
    "Helen",
    "Jonah",
    "Alice",
    "Mateo",
    "Esther",
)
SURNAMES = (
    "Walker",
    "Okafor",
    "Lindqvist",
    "Patel",
    "Moreno",
    "Fischer",
    "Nakamura",
    "Brennan",
    "Haddad",
    "Kowalski",
    "Ferreira",
    "Adams",
    "Novak",
    "Osei",
    "Castillo",
    "Whitfield",
    "Larsen",
    "Mendes",
    "Quinn",
    "Russo",
    "Abbott",
    "Delgado",
    "Hughes",
    "Ibrahim",
    "Jensen",
    "Marsh",
    "Pemberton",
    "Sato",
    "Thornton",
    "Varga",
)
TOWN_HEADS = (
    "Ash",
    "Oak",
    "Stone",
    "River",
    "Wil",
    "Hart",
    "Bram",
    "Elm",
    "Fern",
    "Glen",
    "Mill",
    "Bright",
    "Cold",
    "Red",
    "Thorn",
    "Wolver",
    "Kings",
    "Marsh",
    "Hazel",
    "Pine",
    "Brook",
    "Fox",
    "Lark",
    "Sand",
    "North",
    "West",
    "Alder",
    "Crow",
    "Maple",
    "Clay",
)
TOWN_TAILS = (
    "ford",
    "bridge",
    "field",
    "wick",
    "ton",
    "by",
    "ham",
    "stead",
    "mouth",
    "dale",
    "well",
    "more",
    "haven",
    "combe",
    "ley",
    "worth",
    "gate",
    "hurst",
    "port",
    "bury",
)
RIVERS = ("Wend", "Callow", "Isel", "Marren", "Tove", "Lune", "Brent", "Dove", "Otter", "Sill", "Kell", "Rother")
REGIONS = (
    "the northern valleys",
    "the west of the county",
    "the coastal villages",
    "the hill country",
    "the river towns",
    "the eastern lowlands",
    "the market towns",
    "the upland parishes",
)
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
SMALL_WORDS = {"a", "an", "and", "the", "of", "in", "on", "for", "to", "at", "from", "with", "by", "or"}


def _title(text: str) -> str:
    words = text.split()
    return " ".join(
        w if (i and w in SMALL_WORDS) or w[:1].isupper() else w[:1].upper() + w[1:] for i, w in enumerate(words)
    )


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60].strip("-") or "page"


def _town(rng: random.Random) -> str:
    return rng.choice(TOWN_HEADS) + rng.choice(TOWN_TAILS)


def _person(rng: random.Random) -> tuple[str, str]:
    first = rng.choice(FIRST_NAMES)
    return first, f"{first} {rng.choice(SURNAMES)}"


def _base_context(rng: random.Random) -> dict[str, Any]:
    name, full_name = _person(rng)
    river = rng.choice(RIVERS)
    return {
        "name": name,
        "full_name": full_name,
        "town": _town(rng),
        "region": rng.choice(REGIONS),
        "river": f"the River {river}",
        "River": f"The River {river}",
        "month": rng.choice(MONTHS),
        "late_month": rng.choice(("September", "October", "November")),
        "weekday": rng.choice(WEEKDAYS),
        "year": rng.randint(2009, 2023),
        "n": rng.randint(4, 35),
        "n2": rng.choice((40, 60, 80, 120, 150, 200, 300)),
        "n3": rng.choice((10, 15, 20, 25, 30)),
    }


_ALTERNATIVES = re.compile(r"\[([^\[\]]*)\]")


def _expand(template: str, rng: random.Random) -> str:
    """Pick one alternative for every ``[a|b|c]`` group."""
    return _ALTERNATIVES.sub(lambda m: rng.choice(m.group(1).split("|")), template)


def _host(name: str) -> str:
    return _slug(name) + ".example"


def _format(template: str, ctx: dict[str, Any], rng: random.Random | None = None) -> str:
    return (_expand(template, rng) if rng is not None else template).format_map(ctx)


def _date_text(rng: random.Random) -> str:
    return f"{rng.randint(1, 28)} {rng.choice(MONTHS)} {rng.randint(2016, 2024)}"


def _paragraphs(sentences: list[str], rng: random.Random, lo: int = 3, hi: int = 6) -> list[str]:
    out, i = [], 0
    while i < len(sentences):
        k = rng.randint(lo, hi)
        if len(sentences) - (i + k) < 2:  # no stub paragraph at the end
            k = len(sentences) - i
        out.append(" ".join(sentences[i : i + k]))
        i += k
    return out


def _words(text: str) -> int:
    return len(text.split())
