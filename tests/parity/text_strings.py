"""Deterministic varied strings for the text tokenizer parity tests and benchmark: unicode scripts,
digits, whitespace runs, contractions, emoji, code, and random mixtures of all of them."""
import random

WORDS = ("the quick brown fox jumps over lazy dog two people shake hands and then one of them "
         "turns around walks away slowly while other waves raises arm kicks ball dances spins "
         "hugs pushes pulls steps back forward left right jumps sits stands runs").split()
CONTRACTIONS = ["I'm", "don't", "it's", "they're", "we've", "you'll", "she'd", "can't", "IT'S", "They'RE",
                "o'clock", "rock'n'roll", "'quoted'"]
UNICODE = ["café", "naïve", "Straße", "Ελληνικά", "Русский текст", "中文字符测试", "日本語のテキスト",
           "한국어 문장", "العربية", "हिन्दी", "ภาษาไทย", "e\u0301", "Å\u030a", "ﬁ", "Ⅻ", "½", "²³",
           "\u00a0nbsp", "ideo\u3000space", "line\u2028sep", "nel\u0085x", "mongol\u180evs", "zw\u200bsp"]
EMOJI = ["😀", "👍🏽", "👨‍👩‍👧", "🇺🇸", "❤️", "🤖", "✨✨", "🏃‍♀️", "🫶"]
CODE = ["def f(x):\n    return x ** 2\n", "int main() { return 0; }", "for (i = 0; i < n; ++i) a[i] += b[i];",
        '{"key": [1, 2.5e-3, null]}', "<div class=\"a\">x</div>", "x = re.compile(r'\\s+(?!\\S)')",
        "SELECT * FROM t WHERE id=42;", "#include <vector>\n\tstd::vector<int> v;", "if a != b && c >= d:"]
SPACES = [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n ", "\t \t", "    ", "\n\n\n  "]
DIGITS = ["0", "7", "42", "123", "1234", "12345678", "3.14159", "1,000,000", "2024-11-25", "+1 (555) 010-9999",
          "0x1F", "١٢٣", "४२"]


def _piece(r):
    k = r.random()
    if k < 0.35:
        return r.choice(WORDS) if r.random() < 0.8 else r.choice(WORDS).capitalize()
    if k < 0.45:
        return r.choice(CONTRACTIONS)
    if k < 0.6:
        return r.choice(UNICODE)
    if k < 0.68:
        return r.choice(EMOJI)
    if k < 0.76:
        return r.choice(CODE)
    if k < 0.88:
        return r.choice(DIGITS)
    return "".join(r.choice("!?.,;:-_()[]{}<>/\\|@#$%^&*~`'\"") for _ in range(r.randint(1, 3)))


def strings(n, seed=0):
    """n strings; each joins a few pieces with single spaces or whitespace runs."""
    r = random.Random(seed)
    out = []
    for _ in range(n):
        parts = []
        for _ in range(r.randint(1, 12)):
            parts.append(_piece(r))
            parts.append(" " if r.random() < 0.7 else r.choice(SPACES))
        s = "".join(parts)
        if r.random() < 0.5:
            s = s.rstrip(" ")
        if r.random() < 0.1:
            s = r.choice(SPACES) + s
        out.append(s)
    return out


def training_corpus(n, seed=1):
    """Strings to train tokenizers on: the mix above plus pseudo-words, so merges keep growing."""
    r = random.Random(seed)
    syll = ["ka", "to", "ri", "men", "sa", "lo", "ven", "tra", "qu", "is", "ar", "ne", "po", "di", "ul", "ex"]
    extra = [" ".join("".join(r.choice(syll) for _ in range(r.randint(1, 4))) for _ in range(r.randint(3, 15)))
             for _ in range(n)]
    return strings(n, seed + 100) + extra


CAPTION_SUBJECTS = ["A person", "two people", "The man", "a woman", "Someone", "THE DANCER", "one player",
                    "Zwei Personen", "Η γυναίκα", "Человек", "一个人", "Le garçon", "Los niños", "ΟΔΟΣ ΣΟΦΟΣ"]
CAPTION_VERBS = ["walks forward", "jumps twice", "waves their right hand", "turns around quickly", "sits down",
                 "kicks with the left leg", "shakes hands", "spins 3 times", "runs 10m", "hugs the other",
                 "steps back, then forward", "raises both arms", "tanzt fröhlich", "χορεύει", "танцует",
                 "跳舞", "salue de la main", "STEPS ASIDE"]
CAPTION_EXTRAS = [
    "&amp;", "&quot;hi&quot;", "&#39;ok&#39;", "&lt;b&gt;bold&lt;/b&gt;", "&nbsp;", "&eacute;t&eacute;", "&EACUTE;",
    "&#8220;quoted&#8221;", "&hellip;", "&copy2024", "&amp;amp;", "&amp;lt;", "&#x41;&#66;", "&#128512;", "&#0;",
    "&#x110000;", "&#150;", "&ampersand", "&ltx", "&SZLIG;", "&notit;", "&unknown;", "&#12abc;", "&lang;&rang;",
    "\u201ccurly\u201d", "\u2018single\u2019", "don\u2019t", "\u02bcn", "\ufb01ne \ufb02ow \ufb03", "\u0132sselmeer",
    "\u01c4", "\uff21\uff22\uff23\uff11\uff12", "\uff76\uff9e\uff71", "\uffe3", "\u3000wide", "a\x07b", "\x1b[31mred\x1b[0m",
    "\x1b[", "\ufeffbom", "e\u0301", "o\u0308\u0304", "\u212b", "\u2126", "\u1100\u1161\u11a8", "\u0958",
    "\r\nnext", "line\u2029para", "nel\u0085x", "\x80\x9f", "\u00ad", "\u0130stanbul", "\u1e9e", "\u01c5", "\u2160\u216b",
    "\u24b6", "\u03a3.", "\u0391\u03a3'\u0391", "<start_of_text>", "<END_OF_TEXT>", "it's", "IT'S", "it\u017f",
    "\U0001f600\U0001f44d\U0001f3fd", "\U0001f468\u200d\U0001f469\u200d\U0001f467", "\u00bd \u00b2", "\u0661\u0662",
    "3.5 m/s", "1,000", "x_y-z", "(left)", "[sic]", "...", "!!!", "?!", "\t\ttabs", "  spaces  ", "\n\n", "\u00a0",
    "caf\u00e9", "na\u00efve", "Stra\u00dfe", "\u00c5ngstr\u00f6m", "\u1ec7", "e\u0323\u0302", "\u00e9\u0323",
]


def captions(n, seed=0):
    """n caption-like strings: subject, verb and details, with case, punctuation, numbers, accents,
    Greek/Cyrillic/CJK, emoji, HTML entities and the characters ftfy changes."""
    r = random.Random(seed)
    out = []
    for _ in range(n):
        parts = [r.choice(CAPTION_SUBJECTS), r.choice(CAPTION_VERBS)]
        for _ in range(r.randint(0, 4)):
            parts.append(r.choice(CAPTION_EXTRAS + CAPTION_VERBS + EMOJI + UNICODE + DIGITS))
        if r.random() < 0.3:
            parts.append("and " + r.choice(CAPTION_SUBJECTS).lower() + " " + r.choice(CAPTION_VERBS))
        s = r.choice([" ", " ", " ", ", ", "  ", "\t", "\n"]).join(parts) + r.choice(["", ".", "!", "?", " ...", "\n"])
        if r.random() < 0.2:
            s = s.upper() if r.random() < 0.5 else s.capitalize()
        out.append(s)
    return out
