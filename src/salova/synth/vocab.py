"""The named vocabularies of the synthetic world and the words that describe them.

Every visible attribute of a scene comes from one of the tables below, and captions and
questions use exactly these words, so a text tower can tie a phrase to what is drawn.
Colours are chosen to stay apart after downscaling to a 64 px tower input; the words
written on screen avoid every attribute word, so "the word ..." never reads as a colour,
shape or direction.
"""

from __future__ import annotations

__all__ = [
    "COLORS",
    "SHAPES",
    "SIZES",
    "MOTIONS",
    "PATTERNS",
    "POSITIONS",
    "WORDS",
    "HORIZONTAL_MOTIONS",
    "VERTICAL_MOTIONS",
    "position_word",
    "motion_phrase",
    "motion_option",
    "pattern_phrase",
    "with_article",
]

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "orange": (245, 140, 0),
    "yellow": (245, 225, 30),
    "green": (40, 170, 60),
    "cyan": (0, 200, 220),
    "blue": (30, 70, 220),
    "purple": (140, 50, 200),
    "pink": (250, 130, 200),
    "brown": (125, 75, 30),
    "white": (245, 245, 245),
    "gray": (128, 128, 128),
    "black": (20, 20, 20),
}
"""Colour name -> RGB. Used for objects and backgrounds alike."""

SHAPES: tuple[str, ...] = (
    "circle",
    "square",
    "triangle",
    "diamond",
    "star",
    "hexagon",
    "cross",
    "heart",
)
"""Drawable shapes; `salova.synth.render` holds one outline per name."""

SIZES: dict[str, float] = {"small": 0.15, "medium": 0.21, "large": 0.28}
"""Size name -> object extent as a share of the safe square's side (ratios of about 1.4)."""

HORIZONTAL_MOTIONS: tuple[str, ...] = ("left", "right", "still")
"""Motions of an object in a horizontal lane."""

VERTICAL_MOTIONS: tuple[str, ...] = ("up", "down", "still")
"""Motions of an object in a vertical lane."""

MOTIONS: tuple[str, ...] = ("left", "right", "up", "down", "still")
"""Every motion: a straight glide across the lane during the whole scene, or none."""

PATTERNS: tuple[str, ...] = ("plain", "horizontal stripes", "vertical stripes", "checkered", "dotted")
"""Background patterns, drawn in the background colour and a darker (or lighter) shade of it."""

POSITIONS: tuple[str, ...] = (
    "top left",
    "top",
    "top right",
    "left",
    "center",
    "right",
    "bottom left",
    "bottom",
    "bottom right",
)
"""Where a still object sits: the cells of a 3x3 grid over the safe square, row by row."""

_MOTION_PHRASES: dict[str, str] = {
    "left": "moving to the left",
    "right": "moving to the right",
    "up": "moving up",
    "down": "moving down",
    "still": "standing still",
}
_MOTION_OPTIONS: dict[str, str] = {
    "left": "it moves to the left",
    "right": "it moves to the right",
    "up": "it moves up",
    "down": "it moves down",
    "still": "it stays still",
}
_PATTERN_PHRASES: dict[str, str] = {
    "plain": "plain {color} background",
    "horizontal stripes": "{color} background with horizontal stripes",
    "vertical stripes": "{color} background with vertical stripes",
    "checkered": "{color} checkered background",
    "dotted": "{color} background with dots",
}

WORDS: tuple[str, ...] = (
    # food
    "APPLE", "MANGO", "LEMON", "PEACH", "GRAPE", "MELON", "CHERRY", "BANANA", "KIWI", "ONION",
    "CARROT", "POTATO", "TOMATO", "PEPPER", "GARLIC", "BREAD", "CHEESE", "BUTTER", "HONEY", "SUGAR",
    "COFFEE", "PIZZA", "PASTA", "SALAD", "SOUP", "RICE", "BEANS", "CANDY", "COOKIE", "DONUT",
    "WAFFLE", "PRETZEL", "MUFFIN", "BAGEL", "NOODLE", "TOFFEE", "WALNUT", "ALMOND", "PEANUT", "CELERY",
    # animals
    "TIGER", "LION", "ZEBRA", "HORSE", "CAMEL", "PANDA", "KOALA", "OTTER", "EAGLE", "RAVEN",
    "ROBIN", "SHARK", "WHALE", "SALMON", "TROUT", "MOUSE", "RABBIT", "DONKEY", "GOAT", "SHEEP",
    "LLAMA", "BISON", "MOOSE", "WOLF", "BEAR", "FROG", "TOAD", "SNAKE", "LIZARD", "TURTLE",
    "SPIDER", "BEETLE", "MOTH", "PARROT", "PENGUIN", "DOLPHIN", "GORILLA", "FALCON", "PIGEON", "HAMSTER",
    # nature
    "RIVER", "OCEAN", "CLOUD", "STORM", "RAIN", "SNOW", "THUNDER", "FOREST", "DESERT", "ISLAND",
    "VALLEY", "CANYON", "BEACH", "STONE", "SAND", "FLAME", "FROST", "BREEZE", "MEADOW", "GARDEN",
    "FLOWER", "TULIP", "DAISY", "LILY", "MAPLE", "CEDAR", "BIRCH", "WILLOW", "CACTUS", "GLACIER",
    "VOLCANO", "LAGOON", "PRAIRIE", "TUNDRA", "JUNGLE", "PEBBLE", "REEF", "SUNSET", "RAINBOW", "METEOR",
    # things
    "TABLE", "CHAIR", "LAMP", "CLOCK", "PHONE", "PIANO", "GUITAR", "VIOLIN", "DRUM", "FLUTE",
    "TRUMPET", "CAMERA", "PENCIL", "BRUSH", "PAPER", "BOOK", "LETTER", "TICKET", "WALLET", "BASKET",
    "BOTTLE", "BUCKET", "HAMMER", "LADDER", "ROCKET", "PLANET", "COMET", "ROBOT", "CASTLE", "BRIDGE",
    "TOWER", "TUNNEL", "HARBOR", "MARKET", "SCHOOL", "OFFICE", "STREET", "SUBWAY", "TRAIN", "TRUCK",
    "WAGON", "CANOE", "YACHT", "KETTLE", "MIRROR", "PILLOW", "BLANKET", "CANDLE", "COMPASS", "LANTERN",
    "ANCHOR", "HELMET", "JACKET", "SOCKS", "GLOVES", "SCARF", "BOOTS", "SADDLE", "KEYS", "TROPHY",
    # people and stories
    "PILOT", "DOCTOR", "FARMER", "BAKER", "SINGER", "DANCER", "ARTIST", "POET", "KING", "QUEEN",
    "KNIGHT", "WIZARD", "GIANT", "DRAGON", "GHOST", "ANGEL", "PIRATE", "SAILOR", "HUNTER", "TAILOR",
    # time and activities
    "MONDAY", "FRIDAY", "SUMMER", "WINTER", "AUTUMN", "SPRING", "MORNING", "EVENING", "HOLIDAY", "BIRTHDAY",
    "JAZZ", "OPERA", "BALLET", "TENNIS", "SOCCER", "HOCKEY", "GOLF", "CHESS", "POKER", "PUZZLE",
    "MOVIE", "RADIO", "MUSIC", "DREAM", "SMILE", "LAUGH", "MAGIC", "PEACE", "HAPPY", "LUCKY",
    "BRAVE", "QUIET", "CARPET", "TEAPOT", "MARBLE", "VELVET", "COTTON", "LINEN", "SPOON", "CRYSTAL",
)  # fmt: skip
"""Upper-case words rendered as on-screen text (large and plain, for OCR)."""


def position_word(x: float, y: float) -> str:
    """Name the 3x3 grid cell of a point of the safe square.

    Args:
        x: horizontal coordinate in [0, 1] (0 = left edge of the safe square).
        y: vertical coordinate in [0, 1] (0 = top edge).

    Returns:
        One of `POSITIONS`.

    Example:
        >>> position_word(0.2, 0.8)
        'bottom left'
    """
    column = 0 if x < 1 / 3 else 2 if x > 2 / 3 else 1
    row = 0 if y < 1 / 3 else 2 if y > 2 / 3 else 1
    return POSITIONS[3 * row + column]


def motion_phrase(motion: str) -> str:
    """The caption phrase of a motion, e.g. ``"moving to the left"``."""
    return _MOTION_PHRASES[motion]


def motion_option(motion: str) -> str:
    """The answer option text of a motion, e.g. ``"it moves to the left"``."""
    return _MOTION_OPTIONS[motion]


def pattern_phrase(color: str, pattern: str) -> str:
    """Describe a background, e.g. ``"a blue checkered background"``."""
    return with_article(_PATTERN_PHRASES[pattern].format(color=color))


def with_article(phrase: str) -> str:
    """Prefix the indefinite article English wants: ``"an orange star"``, ``"a red star"``."""
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase
