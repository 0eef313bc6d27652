"""Templates × vocabulary of the English town history articles (pure data)."""

from gristmill_plugins.demo_data.english_topics import Sections

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
