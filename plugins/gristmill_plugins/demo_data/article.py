"""The :class:`Article`: a title plus sections of paragraphs, before it is rendered as HTML."""

from dataclasses import dataclass, field


@dataclass
class Article:
    """Title plus sections of (heading or None, paragraphs)."""

    title: str
    sections: list[tuple[str | None, list[str]]]
    topic: str
    lang: str = "en"
    unused: list[str] = field(default_factory=list)

    def words(self) -> int:
        """Words in the title, headings and paragraphs."""
        parts = [self.title] + [h or "" for h, _ in self.sections] + [p for _, ps in self.sections for p in ps]
        return sum(len(p.split()) for p in parts)
