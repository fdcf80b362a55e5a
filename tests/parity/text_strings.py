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
