"""Templates × vocabulary of the English travel articles (pure data)."""

from gristmill_plugins.demo_data.english_topics import Sections

PLACE_ADJ = ("Amber", "Silver", "Granite", "Windward", "Heather", "Saltmarsh", "Chalk", "Copper", "Misty")
FOODS = (
    "smoked mackerel on rye bread",
    "crab soup with fresh bread",
    "a thick barley stew",
    "apple cake with cream",
    "grilled sardines",
    "cheese and onion pasties",
    "buckwheat pancakes with honey",
    "mussels cooked in cider",
)
TRANSPORT = ("train", "ferry", "coach", "regional bus")
FESTIVALS = ("folk festival", "harvest fair", "sailing regatta", "food festival", "midsummer market")
SEASONS = ("spring", "summer", "autumn", "winter")
TRAVEL: Sections = (
    (
        (),
        (
            "We spent {days} days in {place} in early {season}, and it turned out to be one of the most [relaxing|"
            "restful|memorable] trips we have taken.",
            "Travelling slowly, with no fixed plan for each day, turned out to be the best [decision|choice] we made.",
            "We met [several|a number of|plenty of] walkers who come back every year, and it is easy to see why.",
        ),
    ),
    (
        ("Getting there", "Getting around", "Travel and timing"),
        (
            "The easiest way to get there is by {transport}, and the journey itself is part of the [fun|pleasure|"
            "adventure].",
            "Buses between the villages run a few times a day, so check the timetable before you [set out|leave].",
            "Prices are reasonable outside the summer months, when the crowds have gone home and the roads are "
            "[quiet|empty].",
            "Rooms fill up quickly around the {festival} in {month}, so book well ahead if you plan to [visit|go] "
            "then.",
        ),
    ),
    (
        ("Where we stayed", "Our base", "A place to sleep"),
        (
            "Our small guesthouse in {town} was run by a [friendly|cheerful|kind] couple who served fresh bread and "
            "local jam every morning.",
            "The tourist office in {town} lends out walking maps for free, which saved us from buying a "
            "[guidebook|new map].",
            "In the evenings we sat outside and watched the sun go down over the water, which never seemed to get "
            "[old|boring].",
        ),
    ),
    (
        ("Walks and views", "On foot", "The best walks"),
        (
            "On the first day we walked along the cliffs to the old lighthouse, a round trip of about {km} kilometres.",
            "The path is well marked, but it can be muddy after rain, so good boots are a [sensible|wise] choice.",
            "Our favourite walk followed a stream up through the woods to a waterfall hidden in a [narrow|steep|"
            "quiet] valley.",
            "{full_name}, who has guided walkers in the area for {n} years, recommends starting early to avoid the "
            "afternoon [wind|crowds|heat].",
            "The weather can change quickly, so it is wise to carry a waterproof jacket even when the morning looks "
            "[clear|bright].",
            "Cyclists will find quiet lanes and gentle hills inland, with plenty of places to stop for [tea|a snack|"
            "lunch].",
        ),
    ),
    (
        ("Food and markets", "Eating well", "Food and drink"),
        (
            "The market in {town} is held every {weekday} and sells cheese, smoked fish, honey and [woollen jumpers|"
            "hand-thrown pottery].",
            "We tried the local speciality, {food}, in a small cafe by the harbour, and it was [excellent|delicious].",
            "Most of the villages have a small shop, but it is worth bringing cash, since not every place accepts "
            "cards.",
            "Pack light, bring a good map and leave room in your bag for a jar of local [honey|chutney].",
        ),
    ),
    (
        ("Days out", "Further afield", "Beyond the village"),
        (
            "In the afternoon we visited the ruins of a castle that once guarded the harbour against [raiders|"
            "pirates].",
            "A boat trip to the nearby islands takes about an hour each way and is the best chance to see seals and "
            "[seabirds|puffins].",
            "If you enjoy swimming, the sheltered bay south of the village is calm and clean, though the water is "
            "[cold|bracing].",
            "The local museum explains how fishing and farming shaped the area, and the staff are happy to answer "
            "questions.",
            "On our last morning a thick sea mist rolled in, and the whole bay vanished for a couple of hours.",
            "If you only have a weekend, focus on {town} and the coast path rather than trying to see everything.",
            "By the end of the week we felt rested, a little sunburnt and already planning our [return|next visit].",
        ),
    ),
)
TRAVEL_TITLES = (
    "{days} Days in {place}: A Slow Travel Guide",
    "Walking the Coast Around {town}",
    "A Quiet Week in {place}",
    "What to See in {place} Outside the Summer Season",
    "Our Favourite Corner of {place}",
)
