// PTBLexer's macros and rules (CoreNLP 3.4.1 as pycocoevalcap ships it, options -preserveLines
// -lowerCase: PTB3 escaping of brackets and quotes, no americanize, no slash/asterisk escaping),
// transcribed from its JFlex specification and checked against the jar's output.
#include "ptb_rules.h"

#include "ptb_chars.h"

namespace vimo::eval::ptb {
namespace {

bool ascii_letter(char32_t c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool ascii_digit(char32_t c) { return c >= '0' && c <= '9'; }
bool ascii_alnum(char32_t c) { return ascii_letter(c) || ascii_digit(c); }

// Alternation of caseless literals.
Pat words(std::initializer_list<const char32_t*> ws) {
  Pat p;
  bool first = true;
  for (const char32_t* w : ws) p = first ? lit(w) : p | lit(w), first = false;
  return p;
}

// [X]rest: the first letter in exactly this case (a class), the rest caseless.
Pat cased(char32_t first, const char32_t* rest) { return any_of(std::u32string(1, first)) + lit(rest); }

struct Macros {
  Pat letter_c = cls(is_letter), digit = cls(is_digit), alnum_c = letter_c | digit;
  Pat space = cls(is_space), newline = lit(U"\r\n") | cls(is_newline), spacenl = space | newline;
  Pat splet = lit(U"&") + any_of(U"aeiouAEIOU") + words({U"acute", U"grave", U"uml"}) + lit(U";");
  Pat letter = letter_c | splet;
  Pat word = letter + star(letter | digit) + star(any_of(U".!?") + letter + star(letter | digit));
  Pat apos = any_of(U"'\u0092\u2019") | lit(U"&apos;");
  Pat apos_etc = apos | any_of(U"`\u0091\u2018\u201B");
  Pat redaux = apos + (any_of(U"msdMSD") | words({U"re", U"ve", U"ll"}));
  Pat sword = star(cls([](char32_t c) { return ascii_letter(c) || c == 0xAD; })) +
              cls([](char32_t c) { return ascii_letter(c) && c != 'n' && c != 'N'; }) + star(any_of(U"\u00AD"));
  Pat sredaux = lit(U"n") + apos_etc + lit(U"t");
  Pat sgml_name = cls(ascii_letter) +
                  star(cls([](char32_t c) { return ascii_alnum(c) || c == '_' || c == ':' || c == '.' || c == '-'; }));
  Pat sgml_attr = sgml_name + opt(star(lit(U" ")) + lit(U"=") + star(lit(U" ")) +
                                  ((lit(U"\"") + star(none_of(U"\"\r\n")) + lit(U"\"")) |
                                   (lit(U"'") + star(none_of(U"'\r\n")) + lit(U"'"))));
  Pat sgml =
      lit(U"<") +
      ((any_of(U"!?") + cls([](char32_t c) { return ascii_letter(c) || c == '-'; }) + star(none_of(U">\r\n"))) |
       (sgml_name + star(plus(lit(U" ")) + sgml_attr) + star(lit(U" ")) + opt(lit(U"/"))) | (lit(U"/") + sgml_name)) +
      star(lit(U" ")) + lit(U">");
  Pat apoword =
      (apos + lit(U"n") + opt(apos)) | (any_of(U"lLdDjJ") + apos) | (words({U"Dunkin", U"somethin", U"ol"}) + apos) |
      (apos + lit(U"em")) |
      (cls([](char32_t c) { return (c >= 'A' && c <= 'H') || (c >= 'J' && c <= 'X') || c == 'Z' || c == 'n'; }) +
       apos_etc + letter_c + plus(letter_c)) |
      (apos + range('2', '9') + lit(U"0s")) | (apos + lit(U"til") + opt(lit(U"l"))) |
      (plus(letter_c) + any_of(U"aeiouyAEIOUY") + apos_etc + cls([](char32_t c) {
         return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u' || (c >= 'A' && c <= 'Z');
       }) +
       star(letter_c)) |
      (apos + lit(U"cause")) | (lit(U"cont'd") + opt(lit(U"."))) |
      words({U"'twas", U"nor'easter", U"c'mon", U"e'er", U"s'mores", U"ev'ry", U"li'l", U"nat'l"});
  Pat url_tail = plus(none_of(U" \t\n\f\r\"<>|()")) + none_of(U" \t\n\f\r\"<>|.!?(){},-");
  Pat full_url = lit(U"http") + opt(lit(U"s")) + lit(U"://") + plus(none_of(U" \t\n\f\r\"<>|(){}")) +
                 none_of(U" \t\n\f\r\"<>|.!?(){},-");
  // [^ ...{},-_$] in the flex source: ",-_" is a range, so this label excludes ',' through '_'.
  Pat url_label = cls([](char32_t c) {
    return !(c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r' || c == '"' || c == '`' || c == '\'' ||
             c == '<' || c == '>' || c == '|' || c == '.' || c == '!' || c == '?' || c == '(' || c == ')' || c == '{' ||
             c == '}' || (c >= ',' && c <= '_') || c == '$');
  });
  Pat likely_url =
      ((lit(U"www.") + plus(plus(none_of(U" \t\n\f\r\"<>|.!?(){},")) + lit(U".")) + rep(cls(ascii_letter), 2, 4)) |
       (plus(plus(url_label) + lit(U".")) + words({U"com", U"net", U"org", U"edu"}))) +
      opt(lit(U"/") + url_tail);
  Pat email_dom = plus(none_of(U" \t\n\f\r\"<>|(){}.\u00A0"));
  Pat email = cls(ascii_alnum) + star(none_of(U" \t\n\f\r\"<>|(){}\u00A0")) + lit(U"@") + star(email_dom + lit(U".")) +
              email_dom;
  Pat twitter = (lit(U"@") + cls([](char32_t c) { return ascii_letter(c) || c == '_'; }) +
                 star(cls([](char32_t c) { return ascii_alnum(c) || c == '_'; }))) |
                (lit(U"#") + word);
  Pat date = rep(digit, 1, 2) + any_of(U"-/") + rep(digit, 1, 2) + any_of(U"-/") + rep(digit, 2, 4);
  Pat num = (star(digit) + plus(any_of(U".:,\u00AD\u066B\u066C") + plus(digit))) | plus(digit);
  Pat number = opt(any_of(U"-+")) + num;
  Pat subsupnum = opt(any_of(U"\u207A\u207B\u208A\u208B")) +
                  (plus(any_of(U"\u2070\u00B9\u00B2\u00B3") | range(0x2074, 0x2079)) | plus(range(0x2080, 0x2089)));
  Pat frac = opt(rep(digit, 1, 4) + any_of(U"- \u00A0")) + rep(digit, 1, 4) +
             ((opt(lit(U"\\")) + lit(U"/")) | lit(U"\u2044")) + rep(digit, 1, 4);
  Pat frac2 = any_of(U"\u00BC\u00BD\u00BE") | range(0x2153, 0x215E);
  Pat amp = lit(U"&") | lit(U"&amp;");
  Pat tbspec = (lit(U"-") + words({U"RRB", U"LRB", U"RCB", U"LCB", U"RSB", U"LSB"}) + lit(U"-")) | lit(U"C.D.s") |
               lit(U"pro-") | lit(U"anti-") | (lit(U"S") + amp + lit(U"P-500")) | (lit(U"S") + amp + lit(U"Ls")) |
               (lit(U"Cap") + apos + lit(U"n")) | (lit(U"c") + apos + lit(U"est"));
  Pat thing3_seg = plus(cls(ascii_alnum)) + rep(lit(U"-") + plus(cls(ascii_letter)), 0, 2);
  Pat thing3 = thing3_seg + rep(opt(lit(U"\\")) + lit(U"/") + thing3_seg, 1, 2);
  Pat dolsign = (star(range('A', 'Z')) + lit(U"$")) | lit(U"#");
  Pat dolsign2 = any_of(U"\u00A2\u00A3\u00A4\u00A5\u0080\u20A0\u20AC\u060B\u0E3F\u20A4\uFFE0\uFFE1\uFFE5\uFFE6");
  Pat acro = (cls(ascii_letter) + star(lit(U".") + cls(ascii_letter))) |
             (words({U"Canada", U"Sino", U"Korean", U"EU", U"Japan", U"non"}) + lit(U"-U.S")) |
             (lit(U"U.S.-") + words({U"U.K", U"U.S.S.R"}));
  Pat acronym = acro + lit(U".");
  Pat sentend = spacenl + (spacenl | cls(is_upper) | sgml);
  // An acronym also ends the sentence before one of these words (the first letter's case is exact).
  Pat sentence_starter = [] {
    Pat p;
    bool first = true;
    for (const char32_t* w :
         {U"About",   U"According", U"Additionally", U"After", U"An",      U"A",     U"As",   U"At",    U"But",
          U"Earlier", U"He",        U"Her",          U"Here",  U"However", U"If",    U"In",   U"It",    U"Last",
          U"Many",    U"More",      U"Mr.",          U"Ms.",   U"Now",     U"Once",  U"One",  U"Other", U"Our",
          U"She",     U"Since",     U"So",           U"Some",  U"Such",    U"That",  U"The",  U"Then",  U"There",
          U"These",   U"They",      U"This",         U"We",    U"When",    U"While", U"What", U"Yet",   U"You"}) {
      const Pat w_pat = cased(w[0], w + 1);
      p = first ? w_pat : p | w_pat, first = false;
    }
    return p;
  }();
  Pat abstate = words({U"Ala", U"Ariz"}) | cased('A', U"z") | cased('A', U"rk") |
                words({U"Calif", U"Colo", U"Conn", U"Ct", U"Dak"}) | cased('D', U"el") | words({U"Fla", U"Ga"}) |
                cased('I', U"ll") | words({U"Ind", U"Kan", U"Kans", U"Ky"}) | cased('L', U"a") | cased('M', U"ass") |
                words({U"Md", U"Mich", U"Minn"}) | cased('M', U"iss") |
                words({U"Mo", U"Mont", U"Neb", U"Nev", U"Okla"}) | cased('O', U"re") | cased('P', U"a") |
                words({U"Penn", U"Tenn"}) | cased('T', U"ex") | words({U"Va", U"Vt"}) | cased('W', U"ash") |
                words({U"Wis", U"Wisc", U"Wyo"});
  // Abbreviations normally followed by a lower-case word: before an upper-case one (or at the very
  // end) they also end the sentence, and the period is emitted twice.
  Pat abbrev1 =
      (words({U"Jan", U"Feb", U"Mar", U"Apr", U"Jun", U"Jul", U"Aug", U"Sep", U"Sept", U"Oct", U"Nov", U"Dec", U"Mon",
              U"Tue", U"Tues", U"Wed", U"Thu", U"Thurs", U"Fri"}) |
       abstate | words({U"Inc",  U"Co",    U"Cos", U"Corp", U"Pty", U"Ptys",    U"Pte", U"Ptes", U"Ppty", U"Pptys",
                        U"Ppte", U"Pptes", U"Ltd", U"Plc",  U"Rt",  U"Bancorp", U"Bhd", U"Assn", U"Univ", U"Intl",
                        U"Sys",  U"tel",   U"est", U"ext",  U"sq",  U"Jr",      U"Sr",  U"Bros", U"Ed.D", U"Ph.D",
                        U"Blvd", U"Rd",    U"Esq", U"etc",  U"al",  U"seq",     U"Bldg"})) +
      lit(U".");
  Pat abnum = words({U"No", U"Nos"}) + lit(U".");  // an abbreviation only before a number
  Pat abtitle =
      words({U"Mr", U"Mrs", U"Ms"}) | cased('M', U"iss") |
      words({U"Dr",  U"Drs",  U"Prof",   U"Profs", U"Sen",  U"Sens", U"Rep",   U"Reps", U"Atty", U"Attys", U"Lt",
             U"Col", U"Gen",  U"Messrs", U"Gov",   U"Govs", U"Adm",  U"Rev",   U"Maj",  U"Sgt",  U"Cpl",   U"Pvt",
             U"Mt",  U"Capt", U"St",     U"Ste",   U"Ave",  U"Pres", U"Lieut", U"Hon",  U"Brig", U"Cmdr",  U"Comdr",
             U"Pfc", U"Spc",  U"Supt",   U"Supts", U"Det",  U"M",    U"Mme",   U"Mlle"});
  Pat abbrev4 = cls(ascii_letter) | abtitle |
                words({U"vs", U"Alex", U"Wm", U"Jos", U"Cie", U"a.k.a", U"cf", U"TREAS", U"Invt", U"Elec", U"Natl",
                       U"Mfg", U"Mtg", U"Dept", U"ft", U"Ph"}) |
                acro;
  Pat tbspec2 = apos + cls(ascii_digit) + cls(ascii_digit);
  Pat insentp = any_of(U",;:\u3001");
  Pat d09 = cls(ascii_digit), phone_sep = any_of(U"- \u00A0");
  Pat phone = (((lit(U"(") + rep(d09, 2, 3) + lit(U")") + opt(any_of(U" \u00A0"))) |
                (opt(lit(U"+") + opt(lit(U"+"))) + opt(rep(d09, 2, 4) + phone_sep) + rep(d09, 2, 4) + phone_sep)) +
               rep(d09, 3, 4) + opt(phone_sep) + rep(d09, 3, 5)) |
              (opt(opt(lit(U"+") + opt(lit(U"+"))) + rep(d09, 2, 4) + lit(U".")) + rep(d09, 2, 4) + lit(U".") +
               rep(d09, 3, 4) + lit(U".") + rep(d09, 3, 5));
  Pat dblquot = lit(U"\"") | lit(U"&quot;");
  Pat smiley = opt(any_of(U"<>")) + any_of(U":;=") + opt(any_of(U"-o*'")) + any_of(U")](\\[DPdpO\\|@{");
  Pat ldots = rep(lit(U"."), 3, 5) | (rep(lit(U".") + any_of(U" \u00A0"), 2, 4) + lit(U".")) | any_of(U"\u0085\u2026");
  Pat hyphen = any_of(U"-_\u058A\u2010\u2011");
  Pat hthing = cls(ascii_alnum) +
               star(cls([](char32_t c) { return ascii_alnum(c) || c == '.' || c == ',' || c == 0xAD; })) +
               plus(lit(U"-") + (plus(cls([](char32_t c) { return ascii_alnum(c) || c == 0xAD; })) | acronym));
  Pat thing_pre = opt(any_of(U"dDoOlL") + apos_etc + alnum_c);
  Pat thing = thing_pre + plus(alnum_c) + star(hyphen + thing_pre + plus(alnum_c));
  Pat thinga = plus(range('A', 'Z')) + plus((any_of(U"+&") | lit(U"&amp;")) + plus(range('A', 'Z')));
  Pat quotes =
      apos | lit(U"''") |
      rep(any_of(U"`\u2018\u2019\u201A\u201B\u201C\u201D\u0091\u0092\u0093\u0094\u201E\u201F\u2039\u203A\u00AB\u00BB"),
          1, 2);
};

Rule rule(Pat p, Act a = Act::kRaw) { return Rule{std::move(p), std::nullopt, a, {}, 0, {}}; }
Rule rule(Pat p, Pat ctx, Act a) { return Rule{std::move(p), std::move(ctx), a, {}, 0, {}}; }
Rule fixed(Pat p, const std::u32string& out) { return Rule{std::move(p), std::nullopt, Act::kFixed, out, 0, {}}; }
Rule pushback(Pat p, int n) { return Rule{std::move(p), std::nullopt, Act::kPushback, {}, n, {}}; }

std::vector<Rule> build() {
  const Macros m;
  const Pat any = cls([](char32_t) { return true; });
  std::vector<Rule> r = {
      pushback(lit(U"cannot"), 3),
      pushback(lit(U"'twas"), 3),
      pushback(words({U"gimme", U"gonna", U"gotta", U"lemme", U"more'n", U"wanna", U"'tis"}), 2),
      rule(m.sgml, Act::kSpaceToNbsp),
      fixed(lit(U"&MD;") | lit(U"&mdash;") | lit(U"&ndash;") | any_of(U"\u0096\u0097\u2013\u2014\u2015"), U"--"),
      fixed(lit(U"&amp;"), U"&"),
      rule(lit(U"&") +
           (words({U"HT", U"TL", U"UR", U"LR", U"QC", U"QL", U"QR", U"odq", U"cdq"}) |
            (lit(U"#") + plus(cls(ascii_digit)))) +
           lit(U";")),
      rule(m.word, m.redaux, Act::kSoftHyphen),
      rule(m.sword, m.sredaux, Act::kSoftHyphen),
      rule(m.word, Act::kSoftHyphen),
      rule(m.apoword),
      rule(lit(U"y") + m.apos, m.letter_c, Act::kRaw),
      rule(m.full_url),
      rule(m.likely_url),
      rule(m.email),
      rule(m.twitter),
      rule(m.redaux, cls([](char32_t c) { return !ascii_letter(c); }), Act::kQuoteRight),
      rule(m.sredaux, Act::kQuoteRight),
      rule(m.date),
      rule(m.number, Act::kSoftHyphen),
      rule(m.subsupnum),
      rule(m.frac, Act::kSpaceToNbsp),
      rule(m.frac2, Act::kFraction),
      rule(m.tbspec, Act::kAmp),
      rule(m.thing3),
      rule(m.dolsign),
      rule(m.dolsign2, Act::kCurrency),
      rule(m.acronym, plus(m.spacenl) + m.sentence_starter + m.spacenl, Act::kAcronymEnd),
      rule(m.abbrev1, m.sentend, Act::kAbbrevEnd),
      rule(m.abbrev1, any + any, Act::kRaw),
      rule(m.abbrev1, Act::kAbbrevEnd),  // wins only with fewer than two characters left
      rule(m.abnum, star(m.spacenl) + m.digit, Act::kRaw),
      rule(m.abbrev4 + lit(U".")),
      rule(m.abbrev4, m.space, Act::kRaw),
      rule(m.acro, m.spacenl, Act::kRaw),
      rule(m.tbspec2, m.spacenl, Act::kRaw),
      rule(m.word + lit(U"."), m.insentp, Act::kSoftHyphen),
      rule(m.phone, Act::kPhone),
      rule(m.dblquot, cls([](char32_t c) { return ascii_alnum(c) || c == '$'; }), Act::kQuoteLeft),
      rule(m.dblquot, Act::kQuoteRight),
      rule(m.smiley, Act::kSmiley),
      rule(lit(U"<<") | lit(U">>")),
      fixed(lit(U"<") | lit(U"&lt;"), U"<"),
      fixed(lit(U">") | lit(U"&gt;"), U">"),
      fixed(lit(U"["), U"-LSB-"),
      fixed(lit(U"]"), U"-RSB-"),
      fixed(lit(U"{"), U"-LCB-"),
      fixed(lit(U"}"), U"-RCB-"),
      fixed(lit(U"("), U"-LRB-"),
      fixed(lit(U")"), U"-RRB-"),
      rule(plus(lit(U"-")), Act::kHyphens),
      fixed(m.ldots, U"..."),
      rule(plus(lit(U"@")) | plus(lit(U"#")) | plus(lit(U"_"))),
      rule(plus(lit(U"*")) | rep(lit(U"\\*"), 1, 3)),
      rule(m.insentp),
      rule(plus(any_of(U"?!"))),
      rule(any_of(U".\u00A1\u00BF\u037E\u0589\u061F\u06D4\u0700\u0701\u0702\u07FA")),
      rule(lit(U"=")),
      rule(lit(U"/")),
      rule(m.hthing + lit(U"."), m.insentp, Act::kSoftHyphen),
      rule(m.hthing, Act::kSoftHyphen),
      rule(m.thing + lit(U"."), m.insentp, Act::kRaw),
      rule(m.thing),
      rule(m.thinga + lit(U"."), m.insentp, Act::kAmp),
      rule(m.thinga, Act::kAmp),
      rule(lit(U"'"), cls(ascii_letter) + none_of(U" \t\n\r\u00A0"), Act::kQuoteLeft),
      rule(m.redaux, Act::kQuoteRight),
      rule(m.quotes, Act::kQuoteRight),
      rule(cls(is_misc_symbol)),
      rule(plus(m.space) | any_of(std::u32string(U"\u200B\u200E\u200F\uFEFF") + char32_t(0)), Act::kSkip),
      rule(m.newline, Act::kNewline),
      rule(lit(U"&nbsp;"), Act::kSkip),
  };
  for (auto& x : r)
    for (char32_t c = 0; c < 128; ++c) x.ascii_start[c] = x.pattern.may_start(c);
  return r;
}

void replace_all(std::u32string& s, const std::u32string& from, const std::u32string& to) {
  for (size_t p = s.find(from); p != std::u32string::npos; p = s.find(from, p + to.size()))
    s.replace(p, from.size(), to);
}

}  // namespace

const std::vector<Rule>& rules() {
  static const std::vector<Rule> r = build();
  return r;
}

std::u32string latex_quotes(const std::u32string& in, bool probably_left) {
  std::u32string s = in;
  replace_all(s, U"&apos;", U"'");
  replace_all(s, U"&quot;", U"\"");
  std::u32string out;
  for (char32_t c : s) {
    if (c == '\'') {
      out += probably_left ? U"`" : U"'";
    } else if (c == '"') {
      out += probably_left ? U"``" : U"''";
    } else if (c == 0x91 || c == 0x2018 || c == 0x201B || c == 0x2039) {
      out += U"`";
    } else if (c == 0x92 || c == 0x2019 || c == 0x203A) {
      out += U"'";
    } else if (c == 0x93 || c == 0x201C || c == 0xAB) {
      out += U"``";
    } else if (c == 0x94 || c == 0x201D || c == 0xBB) {
      out += U"''";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace vimo::eval::ptb
