"""Templates × vocabulary of the English gardening articles (pure data)."""

from gristmill_plugins.demo_data.english_topics import Sections

GARDEN_PLANTS = (
    # plural, sun, spacing cm, weeks to harvest, pest, companion, sow month
    ("tomatoes", "full sun", 50, 16, "aphids", "basil", "March"),
    ("runner beans", "full sun", 30, 12, "blackfly", "sweetcorn", "May"),
    ("carrots", "full sun or light shade", 8, 11, "carrot fly", "onions", "April"),
    ("lettuces", "light shade", 25, 7, "slugs", "radishes", "April"),
    ("courgettes", "full sun", 90, 9, "powdery mildew", "nasturtiums", "May"),
    ("potatoes", "full sun", 35, 15, "blight", "beans", "March"),
    ("strawberries", "full sun", 40, 14, "birds", "borage", "April"),
    ("peas", "full sun", 10, 12, "pea moth", "carrots", "March"),
    ("onions", "full sun", 12, 20, "onion fly", "carrots", "March"),
    ("beetroot", "full sun or light shade", 10, 10, "leaf miners", "lettuces", "April"),
    ("kale", "light shade", 45, 14, "cabbage white caterpillars", "marigolds", "May"),
    ("pumpkins", "full sun", 120, 18, "slugs", "sweetcorn", "May"),
    ("sweet peppers", "full sun", 45, 20, "red spider mite", "basil", "February"),
    ("leeks", "full sun", 15, 24, "leek moth", "carrots", "March"),
    ("spinach", "light shade", 15, 8, "leaf miners", "strawberries", "April"),
    ("raspberries", "full sun or light shade", 45, 60, "raspberry beetles", "garlic", "November"),
)
GARDEN_SOIL = (
    "Heavy clay holds water well but sets hard in summer, so dig in plenty of [compost|well-rotted manure|leaf "
    "mould] before you start.",
    "Sandy soil drains quickly and warms up early in the year, although it also loses its nutrients [faster|more "
    "quickly].",
    "A rich, crumbly loam is the ideal, but very few of us are lucky enough to [start with|inherit] one.",
    "Chalky ground tends to be thin and stony, and it benefits from a thick mulch of manure every [autumn|winter].",
    "Peaty soil is dark and holds moisture well, but it can be too acid for some vegetables without [help|a "
    "little lime].",
    "Silty ground is fertile and easy to work, provided you avoid walking on it when it is [wet|sodden].",
)
GARDENING: Sections = (
    (
        (),
        (
            "{Plant} are one of the most [rewarding|satisfying|worthwhile] crops for a small garden, and they do not "
            "need [much|a great deal of] space to do well.",
            "Children [usually|generally] enjoy growing {plant}, because the plants change quickly and there is "
            "always something new to [see|look at|notice].",
            "Our own {plant} struggled in {year}, when a dry spring was followed by [weeks|a month] of heavy rain in "
            "{month}.",
            "This guide [collects|brings together|gathers up] what we have learned since then, along with tips from "
            "the growers of {town}.",
        ),
    ),
    (
        ("Choosing the right spot", "Where to grow them", "Soil and site"),
        (
            "They grow best in {sun}, so pick your [brightest|sunniest|most open] bed and clear it of weeds a week or "
            "two before planting.",
            "{soil}",
            "A soil test kit costs very little and tells you whether the ground is too acid or too alkaline for "
            "{plant}.",
            "Raised beds warm up faster than the open ground, and they are [kinder to the back|easier on the knees] "
            "when it comes to weeding.",
            "Rotate your beds each year so that the same family of plants does not grow in the same [spot|place] "
            "twice in a row.",
        ),
    ),
    (
        ("Sowing and planting", "Getting started", "Planting out"),
        (
            "Most gardeners sow {plant} in {sow_month}, once the soil has begun to warm and the worst of the frost has "
            "[passed|gone].",
            "In {town}, where the winters are long and [wet|grey|windy], many growers start {plant} under glass and "
            "move them outside later.",
            "Leave about {spacing} centimetres between plants, which gives the roots room to spread and lets air "
            "[move|circulate] between the leaves.",
            "Some gardeners in {region} swear by planting on a [cloudy|still, overcast|damp] day, which gives the "
            "young roots a gentle start.",
            "A cold frame made from an old window and a few boards can extend the growing season by [several|two or "
            "three|a few] weeks.",
            "Keep a note of when you sowed each row, as it makes planning the following year [much|a great deal] "
            "easier.",
        ),
    ),
    (
        ("Watering and feeding", "Looking after the plants", "Care through the summer"),
        (
            "Water deeply once or twice a week rather than a little every day, since shallow watering keeps the roots "
            "[near the surface|lazy and shallow].",
            "A layer of [straw|shredded leaves|grass clippings] around the stems keeps moisture in the ground and "
            "stops weeds from taking over.",
            "{full_name}, who runs the community garden in {town}, told us that mulching was the best [change|"
            "improvement] to the plot last year.",
            "If the lower leaves turn yellow, the plants are probably hungry and would [benefit from|welcome] a "
            "liquid feed.",
            "Compost made from kitchen scraps and [grass clippings|garden waste] is free, and it improves almost every "
            "kind of soil.",
            "Tall varieties need support, and a few canes tied with soft string are usually enough to keep them "
            "[upright|standing].",
        ),
    ),
    (
        ("Dealing with pests", "Pests and problems", "Keeping pests away"),
        (
            "The main pest to watch for is {pest}, which can ruin a young plant in a few days if [nobody notices|it "
            "goes unnoticed].",
            "A simple trick is to grow {companion} nearby, because many gardeners find that the two crops [help each "
            "other|do better together].",
            "Slugs are most active after rain, so a walk round the garden with a torch in the evening can save "
            "[many|dozens of] seedlings.",
            "Birds can be a nuisance as well, and a light net over the bed is often the [easiest|cheapest|simplest] "
            "way to keep them off.",
        ),
    ),
    (
        ("Harvest time", "Picking and storing", "Enjoying the crop"),
        (
            "In our experience the first harvest arrives roughly {weeks} weeks after sowing, although a cool spring "
            "[slows things down|can delay it].",
            "Pick {plant} in the morning, when they are cool and full of water, and eat them as [soon|fresh] as you "
            "can.",
            "Any surplus can be shared with neighbours, frozen, or turned into something that keeps through the "
            "[winter|colder months].",
            "Seeds saved from a healthy crop can be dried on a plate, stored in a paper envelope and sown again "
            "[next spring|the following year].",
            "By late {late_month} most of the crop should be in, and the beds can be cleared and [covered|mulched] "
            "for the winter.",
            "The members of the {town} allotment society meet on the first {weekday} of every month to swap seeds and "
            "[advice|stories].",
        ),
    ),
)
GARDEN_TITLES = (
    "How to Grow {Plant} in a Small Garden",
    "A Beginner's Guide to Growing {Plant}",
    "Growing {Plant}: Lessons from {town}",
    "What a Year of Growing {Plant} Taught Us",
    "{Plant} from Seed to Harvest",
    "Easy {Plant} for the Busy Gardener",
)
