"""Templates × vocabulary of the English science articles (pure data)."""

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
