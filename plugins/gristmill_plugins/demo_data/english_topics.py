"""Templates × vocabulary of the English topics: gardening, cooking, town history, travel and science.

Pure data, used by :mod:`gristmill_plugins.demo_data.english`; ``{slot}`` names are filled from the
article's context and ``[a|b|c]`` marks alternatives (see ``vocab._expand``).
"""

# A topic is a list of sections: (headings to choose from, templates in reading order). The first section is
# the introduction (no heading).
Sections = tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]

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

DISHES = (
    # name, main ingredient (plural noun phrase), other ingredients, minutes, serves, spice, substitute, pot/oven
    (
        "lentil soup",
        "onions",
        "red lentils, carrots, garlic and a good vegetable stock",
        45,
        4,
        "cumin",
        ("red lentils", "yellow split peas"),
        "pot",
    ),
    (
        "vegetable curry",
        "onions",
        "potatoes, cauliflower, chopped tomatoes and coconut milk",
        50,
        4,
        "turmeric",
        ("coconut milk", "natural yogurt"),
        "pot",
    ),
    (
        "banana bread",
        "ripe bananas",
        "flour, butter, eggs, brown sugar and a pinch of salt",
        70,
        8,
        "cinnamon",
        ("brown sugar", "honey"),
        "oven",
    ),
    (
        "tomato risotto",
        "shallots",
        "risotto rice, tinned tomatoes, hard cheese and stock",
        40,
        3,
        "smoked paprika",
        ("risotto rice", "pearl barley"),
        "pot",
    ),
    (
        "roast chicken with lemon",
        "chicken thighs",
        "lemons, garlic, potatoes and fresh thyme",
        95,
        5,
        "black pepper",
        ("fresh thyme", "dried oregano"),
        "oven",
    ),
    (
        "apple crumble",
        "cooking apples",
        "flour, butter, oats and sugar",
        55,
        6,
        "nutmeg",
        ("cooking apples", "firm pears"),
        "oven",
    ),
    (
        "chickpea stew",
        "onions",
        "chickpeas, spinach, peppers and tinned tomatoes",
        40,
        4,
        "smoked paprika",
        ("spinach", "kale"),
        "pot",
    ),
    (
        "potato gratin",
        "potatoes",
        "cream, milk, garlic and grated cheese",
        80,
        6,
        "nutmeg",
        ("cream", "creme fraiche"),
        "oven",
    ),
    (
        "mushroom pasta",
        "mushrooms",
        "pasta, garlic, parsley and a little cream",
        25,
        2,
        "black pepper",
        ("parsley", "chives"),
        "pot",
    ),
    (
        "fish pie",
        "leeks",
        "white fish, potatoes, milk and peas",
        75,
        5,
        "mustard powder",
        ("white fish", "smoked haddock"),
        "oven",
    ),
    (
        "bean chilli",
        "onions",
        "kidney beans, peppers, tomatoes and a square of dark chocolate",
        60,
        6,
        "chilli",
        ("kidney beans", "black beans"),
        "pot",
    ),
    (
        "carrot cake",
        "carrots",
        "flour, eggs, walnuts and sultanas",
        75,
        10,
        "mixed spice",
        ("walnuts", "pecans"),
        "oven",
    ),
    (
        "onion tart",
        "onions",
        "shortcrust pastry, eggs, cream and cheese",
        85,
        6,
        "thyme",
        ("shortcrust pastry", "puff pastry"),
        "oven",
    ),
    (
        "leek and potato soup",
        "leeks",
        "potatoes, butter, stock and a splash of milk",
        45,
        4,
        "white pepper",
        ("butter", "olive oil"),
        "pot",
    ),
)
EVENTS = ("church fair", "village fete", "school bake sale", "harvest supper", "street party", "charity lunch")
COOK_METHOD = {
    "pot": (
        "Start by [preparing|chopping|slicing] the {main} and warming a little [oil|butter|oil or butter] in a "
        "heavy pan over a [medium|moderate|gentle] heat.",
        "Stir [often|regularly|every minute or so] so that nothing sticks to the bottom, and add a splash of "
        "water if the pan looks dry.",
        "Once the {main} have softened, add the remaining ingredients and bring everything [gently|slowly] to a "
        "simmer.",
        "Keep the heat low at this stage, since fierce boiling can make the texture [tough|grainy|stodgy].",
        "A heavy pan spreads the heat evenly, which matters more for this recipe than any [special|clever|"
        "expensive] gadget.",
        "When it is ready, the kitchen will smell [wonderful|marvellous|inviting] and the surface should be "
        "gently bubbling.",
    ),
    "oven": (
        "Start by heating the oven to {temp} degrees and [preparing|getting on with] the {main} while it warms up.",
        "Grease the dish well, because a little extra butter now saves a great deal of [scrubbing|washing up] later.",
        "Mix the {main} with the remaining ingredients, spread everything evenly and slide the dish onto the "
        "[middle|centre] shelf.",
        "Resist the urge to open the oven door too often, as every [peek|look] lets out a surprising amount of heat.",
        "Ovens vary a great deal, so start checking about [ten|fifteen] minutes before the time given in the recipe.",
        "When it is ready, the kitchen will smell [wonderful|marvellous|inviting] and the top should be golden brown.",
    ),
}
COOKING: Sections = (
    (
        (),
        (
            "This {dish} takes about {minutes} minutes from start to finish and [serves|feeds] {serves} people.",
            "{full_name} learned to make {dish} from a grandmother in {town}, and the recipe has [barely|hardly] "
            "changed since.",
            "The recipe was first shared at a {event} in {town} in {year}, and it has been a local [favourite|"
            "treasure] ever since.",
            "Many readers have written to say that this has become a regular part of their [weekly cooking|week|"
            "family meals].",
        ),
    ),
    (
        ("What you will need", "Ingredients", "Shopping list"),
        (
            "Besides the {main}, you will need {others}, most of which you [probably|may well] already have in the "
            "[cupboard|kitchen].",
            "If you cannot find {sub_from}, {sub_to} works almost as well and is often [cheaper|easier to find].",
            "Buying {main} in season makes a [noticeable|real] difference to the flavour and to the price.",
            "A pinch of {spice} adds warmth without making the dish too [strong|fiery|overpowering].",
            "If you are cooking for someone with an allergy, check every label carefully, including the [spices|"
            "stock cubes].",
            "Weigh everything before you begin, so that you are not hunting through cupboards [halfway through|at "
            "the last minute].",
        ),
    ),
    (("The method", "How to make it", "Step by step"), ()),  # filled from COOK_METHOD
    (
        ("Serving and storing", "Serving suggestions", "Leftovers"),
        (
            "Serve it with [crusty bread|warm flatbreads|buttered toast], a simple green salad or a bowl of plain "
            "rice.",
            "Taste the {dish} before serving and add a squeeze of lemon if it needs [brightening|lifting].",
            "Leftovers keep in the fridge for {keep_days} days, and many people think they taste even better the "
            "[next day|day after].",
            "The {dish} freezes well, so it is worth making a double batch and saving half for a [busy|hectic|tired] "
            "evening.",
            "In {region}, people often serve this on cold evenings after a long day [outdoors|at work|in the fields].",
        ),
    ),
    (
        ("Tips and variations", "Variations to try", "Tips from our readers"),
        (
            "Season at the end and taste as you go, because it is easy to add more salt but [impossible|very hard] "
            "to take it away.",
            "For a richer version, stir in a spoonful of butter or a little cream just before [serving|you bring it "
            "to the table].",
            "The secret, according to most of the cooks we asked, is to be patient and let the flavours develop "
            "[slowly|in their own time].",
            "Children can help with weighing, stirring and tasting, which makes this a good recipe for a [weekend "
            "afternoon|rainy day].",
            "Write down any changes you make, so that you can repeat the version your family likes [best|most].",
            "Our first attempt in {month} was far too salty, which is why we now add the seasoning a little at a time.",
            "Cheap ingredients cooked with care are often more [satisfying|enjoyable] than an expensive meal in a "
            "restaurant.",
            "A sharp knife and a large chopping board make the preparation much quicker and [safer|more pleasant].",
        ),
    ),
)
COOK_TITLES = (
    "An Easy {Dish} for Busy Weeknights",
    "How to Make {Dish} at Home",
    "{Dish}: A Family Recipe from {town}",
    "The Best {Dish} We Have Ever Made",
    "A Simple Guide to {Dish}",
    "Comfort Food: Our Favourite {Dish}",
)

INDUSTRIES = ("wool", "lace", "pottery", "salt", "brewing", "paper", "leather", "rope", "glass", "silk")
BUILDINGS = (
    "the old corn exchange",
    "the market hall",
    "the church of Saint {saint}",
    "the former workhouse",
    "the toll house by the bridge",
    "the old grammar school",
)
SAINTS = ("Mary", "Peter", "Michael", "Andrew", "Margaret", "Lawrence", "Helen", "Nicholas")
DISASTERS = ("great flood", "terrible fire", "violent storm", "cholera outbreak")
HISTORY: Sections = (
    (
        (),
        (
            "{Town} began as a small settlement beside {river}, where a shallow ford made it easy to cross with "
            "[carts and cattle|sheep and wagons|horses and carts].",
            "The first written record of the town dates from {founded}, when it appears in a list of villages paying "
            "[rent|taxes|tithes] to [an abbey|a distant abbey|the local lord].",
            "For [several|many] centuries the people of {Town} lived mainly from farming, [fishing|weaving at home] "
            "and a weekly market on the green.",
            "Maps from the eighteenth century show a much smaller town, surrounded by fields, orchards and common "
            "land.",
        ),
    ),
    (
        ("The coming of industry", "Mills and merchants", "The {industry} trade"),
        (
            "Everything changed when the {industry} trade arrived, bringing new workers, new houses and a great deal "
            "of [noise|smoke|money].",
            "By {mill_year} there were at least {mills} mills along the river, and the population had grown to around "
            "{pop_then} people.",
            "The {industry} merchants built large houses on the hill, well away from the [smoke and noise|dirt and "
            "din] of the mills.",
            "Records from the period show that wages were low, hours were long and accidents in the mills were "
            "[common|far from rare].",
            "Not everyone welcomed the changes, and there were [several|repeated|angry] protests when new machines "
            "were brought into the mills.",
        ),
    ),
    (
        ("Disaster and recovery", "The {disaster}", "Hard times"),
        (
            "In {disaster_year} a {disaster} struck the lower town, and many families lost both their homes and their "
            "[work|livelihoods].",
            "The damaged streets were rebuilt in brick and stone, and [several|a handful of] houses from that period "
            "are now protected.",
            "A diary kept by a shopkeeper in {diary_year} describes queues for bread, muddy roads and endless talk of "
            "the [weather|harvest|price of coal].",
        ),
    ),
    (
        ("The railway age", "Schools, bridges and railways", "A growing town"),
        (
            "The railway reached {Town} in {rail_year}, and within a decade goods from the town were sold in cities "
            "[across the country|as far away as the capital].",
            "The old bridge over {river} was widened in {bridge_year}, but parts of the original stonework can still "
            "be seen [from the footpath|at low water].",
            "A school for the children of mill workers opened in {school_year}, paid for partly by a public "
            "[collection|subscription].",
            "Older residents still remember the factory whistle that marked the start and the end of each "
            "[shift|working day].",
        ),
    ),
    (
        ("Decline and renewal", "The twentieth century", "A new beginning"),
        (
            "When the last mill closed in {closed_year}, many people feared that the town would simply [fade away|"
            "wither|empty out].",
            "Instead, {Town} slowly reinvented itself, with small businesses, a farmers' market and a growing number "
            "of [visitors|new residents].",
            "Today the population is about {pop_now}, and the old warehouses by the river have become flats, studios "
            "and [cafes|workshops].",
        ),
    ),
    (
        ("The town today", "Visiting the archive", "Traces of the past"),
        (
            "One of the most striking buildings is {building}, which still stands at the top of the [high street|"
            "market square].",
            "Street names such as Weavers Lane and Kiln Row are a reminder of the trades that once kept the town "
            "alive.",
            "The local museum, run almost entirely by volunteers, holds a [remarkable|surprising|fine] collection of "
            "tools, photographs and letters.",
            "Every summer the town holds a festival to celebrate its history, with music, stalls and a parade along "
            "the [river|old canal].",
            "Local historian {full_name} has spent years reading old newspapers, letters and parish records to "
            "[piece the story together|fill in the gaps].",
            "Some of the most interesting stories come from ordinary people, whose letters describe daily life in "
            "[vivid|touching|remarkable] detail.",
            "Anyone interested in the history of {Town} can visit the archive in the library, which opens to the "
            "public on {weekday}s.",
            "It is easy to forget how much hard work went into building the places we now take for granted.",
        ),
    ),
)
HISTORY_TITLES = (
    "A Short History of {Town}",
    "{Town}: From Market Village to Mill Town",
    "How {river_name} Shaped {Town}",
    "The Forgotten Story of {Town}",
    "Life in {Town} Through the Centuries",
    "{Town} and the {Industry} Trade",
)

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

SCIENCE = (
    (
        "why the sky is blue",
        "Why is the sky blue?",
        (
            "Sunlight looks white, but it is really a mixture of all the colours of the rainbow.",
            "When that light enters the atmosphere, it meets countless tiny molecules of nitrogen and oxygen.",
            "These molecules scatter short blue wavelengths much more strongly than long red ones, an effect known as "
            "Rayleigh scattering.",
            "As a result, blue light reaches our eyes from every direction across the sky.",
            "Violet light is scattered even more, but our eyes are less sensitive to it and some of it is absorbed "
            "high up.",
            "At sunrise and sunset the light travels through much more air, so most of the blue is scattered away "
            "and the sky turns orange.",
            "On Mars, where the air is thin and full of fine dust, the daytime sky looks pale brown instead.",
        ),
    ),
    (
        "how rainbows form",
        "How does a rainbow form?",
        (
            "A rainbow appears when sunlight shines on falling raindrops while the sun is behind the observer.",
            "Each drop acts like a tiny prism, bending the light as it enters and again as it leaves.",
            "Because different colours bend by slightly different amounts, the white light is spread out into a band "
            "of colours.",
            "Inside the drop, the light reflects off the back surface before it comes out again toward the viewer.",
            "The result is a circle of light centred on the point directly opposite the sun, which is why rainbows "
            "are curved.",
            "Sometimes a fainter second bow appears outside the first, with its colours in the reverse order.",
            "From an aeroplane it is occasionally possible to see a rainbow as a complete circle.",
        ),
    ),
    (
        "what causes the tides",
        "What causes the tides?",
        (
            "Tides are caused mainly by the gravity of the moon pulling on the oceans.",
            "The side of the Earth facing the moon feels a slightly stronger pull, and the water there bulges outward.",
            "A second bulge forms on the far side, where the moon's pull is weakest and the water is left behind.",
            "As the Earth turns, most coasts pass through both bulges, which is why many places have two high tides "
            "a day.",
            "The sun also affects the tides, although its effect is a little less than half that of the moon.",
            "When the sun and moon line up, at new moon and full moon, the tides are especially large and are called "
            "spring tides.",
            "The shape of the coast matters too, and some narrow bays see more than ten metres between high and low "
            "water.",
        ),
    ),
    (
        "why we have seasons",
        "Why do we have seasons?",
        (
            "Many people think the seasons are caused by the Earth moving closer to the sun and then further away, "
            "but that is not the reason.",
            "The real cause is that the axis of the Earth is tilted by about 23 degrees compared with its path around "
            "the sun.",
            "For part of the year the northern half of the planet leans toward the sun, so days are longer and the "
            "sun climbs higher.",
            "Sunlight arriving at a steep angle spreads its energy over a smaller area, which warms the ground more "
            "effectively.",
            "Six months later the northern half leans away, the days are short and the weather turns cold.",
            "This is why summer in Europe happens at the same time as winter in Australia.",
            "Near the equator the tilt makes much less difference, and many places have wet and dry seasons instead.",
        ),
    ),
    (
        "how plants make their food",
        "How do plants make their own food?",
        (
            "Plants make their food through a process called photosynthesis, which takes place mainly in their leaves.",
            "Inside the leaf cells are tiny structures called chloroplasts, which contain the green pigment "
            "chlorophyll.",
            "Chlorophyll absorbs energy from sunlight, mostly from the red and blue parts of the spectrum.",
            "The plant uses that energy to combine carbon dioxide from the air with water drawn up from the roots.",
            "The products are sugar, which the plant uses for energy and growth, and oxygen, which is released into "
            "the air.",
            "Most of the oxygen we breathe has been produced by plants and algae in exactly this way.",
            "Because green light is mostly reflected rather than absorbed, leaves look green to our eyes.",
        ),
    ),
    (
        "how bees make honey",
        "How do bees make honey?",
        (
            "Honey bees collect a sweet liquid called nectar from flowers, using a long tongue that works like a "
            "straw.",
            "The nectar is stored in a special stomach, separate from the one the bee uses for its own food.",
            "Back at the hive, the forager passes the nectar to younger worker bees, who add enzymes to it.",
            "The bees spread the liquid in wax cells and fan it with their wings so that much of the water evaporates.",
            "When the honey is thick enough, they seal each cell with a thin cap of wax.",
            "A single bee makes only a small fraction of a teaspoon of honey during its whole life.",
            "A strong colony can still store many kilograms in a good summer, which feeds it through the winter.",
        ),
    ),
    (
        "what causes lightning",
        "What causes lightning?",
        (
            "Inside a thundercloud, strong air currents carry water droplets and ice crystals up and down.",
            "As these particles collide, electric charge is separated, and the base of the cloud usually becomes "
            "negative.",
            "When the difference in charge grows large enough, the air can no longer hold it back and a giant spark "
            "jumps across.",
            "The spark heats the air around it to a temperature hotter than the surface of the sun for a tiny "
            "fraction of a second.",
            "The heated air expands so suddenly that it creates a shock wave, which we hear as thunder.",
            "Light travels much faster than sound, so we see the flash before we hear the rumble.",
            "Counting the seconds between the two and dividing by three gives a rough distance to the storm in "
            "kilometres.",
        ),
    ),
    (
        "how volcanoes work",
        "How do volcanoes work?",
        (
            "Deep below the surface, rock can become hot enough to melt partly, forming a mixture called magma.",
            "Because magma is lighter than the solid rock around it, it slowly rises toward the surface.",
            "It collects in chambers a few kilometres underground, where gases dissolved in it begin to form bubbles.",
            "When the pressure becomes too great, the magma forces its way up through cracks and erupts.",
            "Runny magma tends to flow out gently as lava, while thick, sticky magma traps gas and can explode.",
            "Most volcanoes are found near the edges of the plates that make up the outer shell of the Earth.",
            "Scientists watch for small earthquakes, swelling ground and changes in gas to warn when an eruption may "
            "be coming.",
        ),
    ),
    (
        "why leaves change colour",
        "Why do leaves change colour in autumn?",
        (
            "During spring and summer, leaves are full of chlorophyll, which gives them their green colour.",
            "As the days shorten in autumn, many trees stop making chlorophyll and begin to break down the old supply.",
            "Once the green fades, yellow and orange pigments that were there all along become visible.",
            "Some trees also produce new red and purple pigments, especially when the days are sunny and the nights "
            "are cool.",
            "At the same time, a layer of cells forms where each leaf joins its twig, slowly cutting it off.",
            "Eventually the leaf falls, and the tree rests through the winter with its buds protected.",
            "Dry, sunny autumns usually bring the brightest colours, while a wet and cloudy season gives duller ones.",
        ),
    ),
    (
        "how sound travels",
        "How does sound travel?",
        (
            "Sound is a vibration that travels through a material such as air, water or wood.",
            "When a guitar string moves, it pushes the air molecules next to it, which push their neighbours in turn.",
            "This creates a pattern of squeezed and stretched regions in the air, known as a sound wave.",
            "In air, sound travels at about 340 metres per second, which is very slow compared with light.",
            "It moves faster in water and faster still in solids such as steel.",
            "In the near vacuum of space there is almost nothing to carry the vibration, so there is no sound at all.",
            "Our ears turn these tiny changes in pressure into signals that the brain understands as speech, music "
            "or noise.",
        ),
    ),
)
SCIENCE_OPENERS = (
    "{name} from {town} sent us a question that many people have wondered about: {question}",
    "{Question} It is one of the questions we hear most often, and the answer is a lovely piece of everyday science.",
    "Every few weeks a reader asks us {subject}, so here is our best attempt at a clear and simple answer.",
    "Our youngest readers often want to know {subject}, and it turns out to be a wonderful question.",
)
SCIENCE_GENERIC = (
    "The short answer involves a little science, but the main ideas are easier to follow than they first appear.",
    "Scientists have studied {subject} for a long time, and the basic picture is now well understood.",
    "Scientific explanations are models, and they are useful because they make predictions that we can test.",
    "{full_name}, a science teacher in {town}, likes to explain the idea by comparing it with something from "
    "everyday life.",
    "If you want to read more, your local library probably has several good introductions written for a general "
    "audience.",
    "Measurements made over many years have confirmed this basic picture again and again.",
    "Like many things in nature, the full story is more complicated, but the main idea fits in a few sentences.",
    "Children are often the ones who ask the best questions, and this is one of the most common.",
    "Understanding {subject} also helps to explain several other things we see around us every day.",
    "Early explanations were often wrong, but each one was tested and improved by the people who came after.",
    "You do not need any special equipment to start noticing this for yourself.",
    "Next time you are outside, take a moment to look carefully, and you may see the effect described here.",
    "Good questions rarely have one-word answers, and this one is no exception.",
    "Many museums and science centres have hands-on displays that show these ideas in action.",
)
SCIENCE_TITLES = (
    "{Question}",
    "Explained: {Subject}",
    "A Simple Explanation of {Subject}",
    "Ask a Scientist: {Question}",
    "The Science Behind {Subject}",
)
SCIENCE_HEADINGS = (
    "The short answer",
    "A closer look",
    "What scientists found",
    "The details",
    "Why it matters",
    "Putting it together",
)
