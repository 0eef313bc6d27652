"""Templates × vocabulary of the English cooking articles (pure data)."""

from gristmill_plugins.demo_data.english_topics import Sections

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
