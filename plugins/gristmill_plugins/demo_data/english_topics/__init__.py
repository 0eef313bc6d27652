"""Templates × vocabulary of the English topics: gardening, cooking, town history, travel and science.

Pure data, one module per topic, used by :mod:`gristmill_plugins.demo_data.english`; ``{slot}`` names are filled
from the article's context and ``[a|b|c]`` marks alternatives (see ``vocab._expand``).
"""

# A topic is a list of sections: (headings to choose from, templates in reading order). The first section is
# the introduction (no heading).
Sections = tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]
