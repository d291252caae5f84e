"""Text normalisation and tokenisation for Russian social-media posts.

Posts arrive full of noise: links, emoji, VK/OK mention markup (``[id1|Имя]``,
``[club1|Группа]``), hashtags, Latin look-alike letters typed inside Cyrillic words
(``ЯMA``, ``пpовода``), ``ё``, stretched letters (``ооочень``), shouting in caps.
:func:`clean` removes or repairs them but keeps the letter case (capitalisation
helps to tell a village called «Бор» from the word «бор»); :func:`tokenize` splits
the cleaned text into :class:`Token` objects that remember their case and whether
they open a sentence.

Everything here is pure regular expressions and dictionaries compiled once at import.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

MAX_ANALYSED_CHARS = 5000
"""Longer texts are analysed on their first this-many characters (see :func:`truncate`)."""

_URL = re.compile(
    r"(?:https?://|www\.)\S+|\b[\w.-]+\.(?:ru|рф|com|net|org|su|me|info|online)(?:/\S*)?",
    re.IGNORECASE,
)
_VK_PERSON = re.compile(r"\[(?:id|u)\d+\|([^\]\[]{0,80})\]", re.IGNORECASE)
_VK_GROUP = re.compile(r"\[(?:club|public|event|group)\d+\|([^\]\[]{0,120})\]", re.IGNORECASE)
_VK_BARE = re.compile(r"\[(?:id|club|public|event)\d+\]", re.IGNORECASE)
_MENTION = re.compile(r"(?<![\w@])@[\w.]+")
_MAY_BE_URL = re.compile(r"https?:|www\.|\.(?:ru|рф|com|net|org|su|me|info|online)", re.IGNORECASE)
"""Cheap pre-check: only texts with a scheme, ``www.`` or a known domain ending can hold a link."""
_OK_MARKUP = re.compile(r"#u\d+(?:ob|pb)?|\{[a-z]+:\d+\}", re.IGNORECASE)
_HASHTAG = re.compile(r"#(\w+)")
_EMOJI = re.compile(
    "["
    "\U0001f000-\U0001faff"  # pictographs, emoticons, transport, symbols
    "\U00002190-\U000021ff"  # arrows
    "\U00002300-\U000023ff"  # misc technical
    "\U000025a0-\U000027bf"  # geometric shapes, dingbats, misc symbols
    "\U00002b00-\U00002bff"
    "\U0000fe00-\U0000fe0f"  # variation selectors
    "\U0000200b-\U0000200f\U00002060\U0000feff"  # zero-width characters
    "\U0000200d\U000020e3"
    "\U000e0000-\U000e007f"
    "]+"
)
_PICTOGRAPHS = "\U0001f000-\U0001faff\U00002600-\U000027bf\U00002b00-\U00002bff"
_PICTOGRAPH_ENDS_SENTENCE = re.compile(
    f"[{_PICTOGRAPHS}][{_PICTOGRAPHS}\ufe0f\u200d]*(?=[ \t\u00a0]*[А-ЯЁA-Z])"
)
"""Emoji before a capital letter end a sentence («крыша едет 🙃 Хорошо, что…»); before a
hashtag («☔ #слободской») or inside a sentence they are only removed."""
_MAY_BE_EMOJI = re.compile(f"[{_PICTOGRAPHS}]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd]")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u3000]+")
_PUNCT_RUN = re.compile(r"([!?.,])\1+")

# Latin letters that look like Cyrillic ones (lower and upper case).
_LATIN_TO_CYR = str.maketrans(
    {
        "a": "а",
        "o": "о",
        "e": "е",
        "p": "р",
        "c": "с",
        "x": "х",
        "y": "у",
        "k": "к",
        "m": "м",
        "t": "т",
        "h": "н",
        "b": "в",
        "u": "и",
        "n": "п",
        "r": "г",
        "A": "А",
        "O": "О",
        "E": "Е",
        "P": "Р",
        "C": "С",
        "X": "Х",
        "Y": "У",
        "K": "К",
        "M": "М",
        "T": "Т",
        "H": "Н",
        "B": "В",
        "3": "З",
        "0": "О",
    }
)
_CYR = "а-яёА-ЯЁ"
_WORD_WITH_MIX = re.compile(rf"[{_CYR}A-Za-z0-9]*[{_CYR}][{_CYR}A-Za-z0-9]*")
_HAS_LATIN = re.compile(r"[A-Za-z]")
_MAY_NEED_FIX = re.compile(rf"[A-Za-z]|[{_CYR}][03]|[03][{_CYR}]")
"""A Latin letter, or a 0/3 next to a Cyrillic letter: only then can :func:`fix_homoglyphs` change a word."""
_STRETCH = re.compile(rf"([{_CYR}])\1{{2,}}", re.IGNORECASE)
_WORD = re.compile(rf"[{_CYR}A-Za-z0-9]+(?:-[{_CYR}A-Za-z0-9]+)*")
_PUNCT_AFTER = frozenset(".:,;—–-!?()")
_DASHES = frozenset("—–-")
_SENTENCE_END = re.compile(r"[.!?…]+|\n")

# Abbreviations whose dot does not end a sentence (lower case, no dot).
ABBREVIATIONS = frozenset(
    "г д с п пос пгт дер ул пр просп пер пл наб мкр м-н р-н р-на р-не обл им т тел см стр корп кв "
    "ст сп с/п".split()
)


def fix_homoglyphs(word: str) -> str:
    """Replace Latin look-alikes (and 0/3 between letters) in the Cyrillic parts of a word.

    Each hyphen-separated part is repaired only if it has a Cyrillic letter, so
    «Wi-Fi-роутер» keeps its Latin part while «пpовода» and «ЯMA» are repaired.
    """
    if not _HAS_LATIN.search(word) and "0" not in word and "3" not in word:
        return word
    return "-".join(_fix_part(part) for part in word.split("-"))


def _fix_part(part: str) -> str:
    if not any(("а" <= ch.lower() <= "я") or ch in "ёЁ" for ch in part):
        return part
    out = []
    for i, ch in enumerate(part):
        if ch in "03":
            prev_alpha = i > 0 and part[i - 1].isalpha()
            next_alpha = i + 1 < len(part) and part[i + 1].isalpha()
            out.append(ch.translate(_LATIN_TO_CYR) if prev_alpha and next_alpha else ch)
        else:
            out.append(ch.translate(_LATIN_TO_CYR) if ch.isascii() else ch)
    fixed = "".join(out)
    if fixed.isupper() or fixed.islower() or not part[:1].islower():
        return fixed
    return fixed.lower()  # «пpовода» with an upper-case look-alike inside a lower-case word


def squeeze_stretched(text: str, is_known: Callable[[str], bool] | None = None) -> str:
    """Collapse letters repeated three or more times (``ооочень`` → ``очень``).

    A run becomes a double letter when only the doubled word is in the dictionary
    (``ссссора`` → ``ссора``); legitimate double letters are never touched because
    only runs of three or more are considered.
    """
    if not _STRETCH.search(text):
        return text

    def fix_word(match: re.Match[str]) -> str:
        word = match.group(0)
        if not _STRETCH.search(word):
            return word
        single = _STRETCH.sub(r"\1", word)
        if is_known is None:
            return single
        double = _STRETCH.sub(r"\1\1", word)
        if is_known(double.lower()) and (double != single):
            return double
        return single

    return _WORD.sub(fix_word, text)


def truncate(text: str, limit: int = MAX_ANALYSED_CHARS) -> tuple[str, bool]:
    """The first ``limit`` characters (cut at a word boundary) and whether anything was cut."""
    if len(text) <= limit:
        return text, False
    cut = text.rfind(" ", limit - 200, limit)
    return text[: cut if cut > 0 else limit], True


def _hashtag_words(match: re.Match[str]) -> str:
    """A hashtag's words, capitalised: a hashtag is a name the writer chose, so «#слободской»
    reads as «Слободской» (places count capitalised names; lemmas and features ignore case)."""
    words = match.group(1).replace("_", " ")
    return f" {words[:1].upper()}{words[1:]} "


def clean(text: str, is_known: Callable[[str], bool] | None = None) -> str:
    """Remove markup, links, emoji and noise; repair look-alikes, ``ё``, stretched letters.

    Case is preserved. ``is_known`` (a dictionary check) refines stretched-letter repair.
    """
    if not text:
        return ""
    text = _CONTROL.sub(" ", text)
    if _MAY_BE_URL.search(text):
        text = _URL.sub(" ", text)
    text = _VK_PERSON.sub(" ", text)
    text = _VK_GROUP.sub(r" \1 ", text)
    text = _VK_BARE.sub(" ", text)
    text = _OK_MARKUP.sub(" ", text)
    if "@" in text:
        text = _MENTION.sub(" ", text)
    if _MAY_BE_EMOJI.search(text):
        text = _PICTOGRAPH_ENDS_SENTENCE.sub("\n", text)
    text = _HASHTAG.sub(_hashtag_words, text)
    text = _EMOJI.sub(" ", text)
    text = text.replace("ё", "е").replace("Ё", "Е")
    if _HAS_LATIN.search(text) or (("0" in text or "3" in text) and _MAY_NEED_FIX.search(text)):
        # most posts have no Latin letter and no 0/3 inside a word
        text = _WORD_WITH_MIX.sub(lambda m: fix_homoglyphs(m.group(0)), text)
    text = squeeze_stretched(text, is_known)
    text = _PUNCT_RUN.sub(r"\1", text)
    text = _SPACES.sub(" ", text)
    return text.strip()


@dataclass(slots=True)
class Token:
    """One word of a cleaned text (treat as read-only; not frozen only because a frozen
    dataclass's constructor costs 2.5x more, and every post makes dozens of tokens).

    ``text`` keeps the case, ``low`` is lower case; ``sent_start`` is true for the first
    word of a sentence (its capital letter then says nothing about a proper name);
    ``dot_after`` marks an abbreviation such as «д.» or «ул.».
    """

    text: str
    low: str
    index: int
    start: int
    end: int
    sent_start: bool
    dot_after: bool
    punct_after: bool = False
    """Punctuation («.», «:», «,», «—») right after the word, spaces aside: «Кумёны: нет света»,
    «Луза — кладбище…»; the end of the text counts as punctuation."""
    dash_after: bool = False
    """A dash between this word and the next («Киров — Советск»)."""
    quoted: bool = False
    """An opening quote right before the word: a name in quotes («ДК «Родина»», «ТЦ "Глобус"»)."""

    @property
    def is_capitalized(self) -> bool:
        return self.text[:1].isupper()


_WORD_AND_GAP = re.compile(rf"({_WORD.pattern})([^{_CYR}A-Za-z0-9]*)")
"""A word and the non-word characters after it (the gap before the next word)."""
_GAP_CACHE_MAX_LEN = 6


_OPENING_QUOTES = ("«", '"', "“", "„")

_Gap = tuple[bool, bool, bool, bool, bool, bool]


@lru_cache(maxsize=4096)
def _gap(gap: str) -> _Gap:
    """What the characters between two words say: (ends a sentence, a dot ends the sentence
    only unless the word before is an abbreviation, a dot right after the word, punctuation
    right after the word, a dash between the words, an opening quote before the next word).
    The end of the text counts as punctuation."""
    ends = bool(_SENTENCE_END.search(gap))
    dot_may_abbreviate = ends and gap.lstrip().startswith(".") and "\n" not in gap
    spaced = gap.lstrip(" ")  # «Луза — кладбище…»: a dash after a space still follows the word
    punct = (spaced[:1] in _PUNCT_AFTER) if spaced else not gap
    dash = spaced[:1] in _DASHES and bool(spaced)
    return ends, dot_may_abbreviate, gap.startswith("."), punct, dash, gap.endswith(_OPENING_QUOTES)


def tokenize(cleaned: str) -> list[Token]:
    """Split a cleaned text into words (hyphenated words stay one token).

    One regular expression finds each word with the gap after it; what a gap says (sentence
    end, abbreviation dot, punctuation) is cached per gap string, since few distinct gaps
    (« », «, », «. ») make up almost all of them.
    """
    tokens: list[Token] = []
    append = tokens.append
    sent_start = True
    prev: Token | None = None
    prev_gap: _Gap = (False, False, False, False, False, cleaned[:1] in _OPENING_QUOTES)
    for match in _WORD_AND_GAP.finditer(cleaned):
        word, gap = match.group(1, 2)
        if prev is not None:
            ends_sentence, dot_may_abbreviate = prev_gap[0], prev_gap[1]
            # a dot right after an abbreviation or an initial does not end the sentence
            if dot_may_abbreviate and (
                prev.low in ABBREVIATIONS or (len(prev.text) == 1 and prev.text.isupper())
            ):
                ends_sentence = False
            sent_start = ends_sentence
        info = _gap(gap) if len(gap) <= _GAP_CACHE_MAX_LEN else _gap.__wrapped__(gap)
        start = match.start()
        prev = Token(
            word,
            word.lower(),
            len(tokens),
            start,
            start + len(word),
            sent_start,
            info[2],
            info[3],
            info[4],
            prev_gap[5],
        )
        append(prev)
        prev_gap = info
    return tokens
