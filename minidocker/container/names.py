"""Random container names like Docker's `focused_turing` (moby pkg/namesgenerator)."""
from __future__ import annotations

import os

LEFT = ["admiring", "adoring", "affectionate", "agitated", "amazing", "angry", "awesome",
        "blissful", "bold", "boring", "brave", "busy", "charming", "clever", "compassionate",
        "competent", "condescending", "confident", "cool", "cranky", "crazy", "dazzling",
        "determined", "distracted", "dreamy", "eager", "ecstatic", "elastic", "elated",
        "elegant", "eloquent", "epic", "exciting", "fervent", "festive", "flamboyant", "focused",
        "friendly", "frosty", "funny", "gallant", "gifted", "goofy", "gracious", "great",
        "happy", "hardcore", "heuristic", "hopeful", "hungry", "infallible", "inspiring",
        "intelligent", "interesting", "jolly", "jovial", "keen", "kind", "laughing", "loving",
        "lucid", "magical", "modest", "musing", "mystifying", "naughty", "nervous", "nice",
        "nifty", "nostalgic", "objective", "optimistic", "peaceful", "pedantic", "pensive",
        "practical", "priceless", "quirky", "quizzical", "recursing", "relaxed", "reverent",
        "romantic", "sad", "serene", "sharp", "silly", "sleepy", "stoic", "strange", "stupefied",
        "suspicious", "sweet", "tender", "thirsty", "trusting", "unruffled", "upbeat",
        "vibrant", "vigilant", "vigorous", "wizardly", "wonderful", "xenodochial", "youthful",
        "zealous", "zen"]
RIGHT = ["albattani", "allen", "almeida", "archimedes", "ardinghelli", "babbage", "banach",
         "bardeen", "bartik", "bell", "bhabha", "bohr", "booth", "borg", "bose", "brahmagupta",
         "brattain", "brown", "carson", "cerf", "chandrasekhar", "clarke", "curie", "darwin",
         "davinci", "diffie", "dijkstra", "einstein", "elion", "engelbart", "euclid", "euler",
         "fermat", "fermi", "feynman", "franklin", "galileo", "gauss", "goldberg", "goodall",
         "hamilton", "hawking", "heisenberg", "hellman", "hodgkin", "hopper", "hypatia",
         "jang", "jennings", "johnson", "kalam", "kepler", "khorana", "knuth", "kowalevski",
         "lamarr", "lamport", "leakey", "liskov", "lovelace", "lumiere", "mayer", "mccarthy",
         "mcclintock", "meitner", "mendel", "merkle", "mirzakhani", "morse", "newton", "nobel",
         "noether", "pare", "pascal", "pasteur", "payne", "perlman", "pike", "poincare",
         "ptolemy", "raman", "ramanujan", "ritchie", "rosalind", "sammet", "shamir", "shannon",
         "shaw", "sinoussi", "stonebraker", "swanson", "tesla", "thompson", "torvalds",
         "turing", "varahamihira", "villani", "wescoff", "wiles", "williams", "wing", "wozniak",
         "wright", "wu", "yalow", "yonath"]


def random_name(retry: int = 0) -> str:
    """`adjective_scientist`; after a collision (retry > 0) with a digit added, as moby does."""
    name = f"{_choice(LEFT)}_{_choice(RIGHT)}"
    return f"{name}{_choice(range(10))}" if retry else name


def _choice(seq):
    # (what secrets.choice does, near enough for a name, without importing secrets' 4 ms)
    return seq[int.from_bytes(os.urandom(4), "little") % len(seq)]
