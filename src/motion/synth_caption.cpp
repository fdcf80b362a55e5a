// Captions for synthetic interactions: per type a pool of templates with paraphrase choices; slots are
// filled from the clip's roles so who-does-what and left/right always match the motion.
//   {X} the actor, {Y} the partner ("the first person", "person B", ...: always saying which is which)
//   {A} the approach of the variant ("{X} walks up to {Y}", "{X} and {Y} approach each other", ...)
//   {h} actor's side word, {g} partner's side word, {dir} direction word, {turn} / {turns} / {curve}
//   walking path phrase after a plural verb / a singular verb / as a participle,
//   {D} / {Dg} dodge phrase (verb / gerund), [a|b|c] a random choice, [a|] optional text.
#include <string>
#include <vector>

#include "vimo/motion/synth.h"
#include "vimo/motion/synth_body.h"

namespace vimo::motion {
namespace {

using Pool = std::vector<const char*>;

// Every template names every scripted attribute of its type (who starts, the hands or foot, the
// variant, the turning direction), so a matcher that reads caption and motion can tell any two clips
// with different scripts apart. {A}: how the two come together, from the variant (approach types).
Pool pool(SynthType t, const SynthRoles& r) {
  const std::string& v = r.variant;
  switch (t) {
    case SynthType::kHandshake:
      return {"{A}, and they [shake hands|exchange a handshake] with their {h} hands.",
              "{A}; {X} [offers|extends|holds out] a {h} hand to {Y}, who [shakes it|takes it and shakes it].",
              "{A} and the two greet each other with a {h}-handed handshake, {X} reaching out first.",
              "{A}; then {X} and {Y} shake {h} hands, pumping them up and down[| a few times]."};
    case SynthType::kHug:
      return {"{A}, and {X} [opens|spreads] their arms and hugs {Y}, who hugs back.",
              "{A}; {X} gives {Y} a [warm|big|] hug, and {Y} returns it.",
              "{A} and the two embrace[| for a moment], {X} hugging first, before letting go.",
              "{A}, then {X} hugs {Y}[| tightly], and {Y} wraps their arms around {X} too."};
    case SynthType::kHighFive:
      return {"{A}; {X} raises their {h} hand and {Y} gives a high five with their {g} hand.",
              "{A}, and {X} [lifts|holds up] the {h} hand for a high five, which {Y} slaps with the {g} hand.",
              "{A} and they high-five, {X} with the {h} hand and {Y} with the {g} hand.",
              "{A}; {Y} answers {X}'s raised {h} hand with a {g}-handed high five."};
    case SynthType::kWave:
      if (v == "partner_turns")
        return {"{X} waves [at|to] {Y} with the {h} hand; {Y}, looking away at first, turns and waves back with the {g} hand.",
                "{Y} turns toward {X}, who is waving the {h} hand, and waves back with the {g} hand.",
                "Seeing {X} wave the {h} hand, {Y} turns to face them and waves back with the {g} hand.",
                "{X} raises the {h} hand and waves; {Y} turns toward {X} and [responds|answers] by waving the {g} hand."};
      return {"{X} waves [at|to] {Y} with their {h} hand, and {Y}, already facing {X}, waves back with their {g} hand.",
              "[Facing each other|Standing face to face], {X} waves {h}-handed and {Y} waves back {g}-handed.",
              "{X} greets {Y}, who stands facing them, with a wave of the {h} hand, and {Y} returns the wave with the {g} hand.",
              "[Standing|Standing some distance] apart and facing each other, {X} waves the {h} hand and {Y} waves back with the {g} hand."};
    case SynthType::kPush:
      if (v == "two_hands")
        return {"{X} [walks up to|approaches|steps toward] {Y} and pushes them with both hands, and {Y} staggers backward.",
                "{X} shoves {Y} in the chest with both hands; {Y} stumbles back[| a few steps].",
                "{Y} is pushed [hard|] by {X} with both hands and [staggers|stumbles] backward.",
                "{X} pushes {Y} away with two hands, and {Y} loses balance and steps back."};
      return {"{X} pushes {Y} with their {h} hand, and {Y} staggers backward.",
              "{X} [approaches|walks up to] {Y} and shoves them with the {h} hand, sending {Y} stumbling back.",
              "{Y} is pushed by {X}'s {h} hand and [staggers|stumbles] backward.",
              "With the {h} hand, {X} pushes {Y} away, and {Y} steps back to keep balance."};
    case SynthType::kPunch:
      return {"{X} throws a {h}-handed punch at {Y}, who {D} to dodge it.",
              "{X} [steps in and |]punches at {Y}'s head with the {h} fist; {Y} {D} and avoids it.",
              "{X} swings a {h} punch toward {Y}, but {Y} {D}.",
              "{Y} dodges {X}'s {h}-handed punch by {Dg}.",
              "[Squaring off|Facing off with fists raised], {X} punches with the {h} hand and {Y} {D}."};
    case SynthType::kBow:
      if (v == "together")
        return {"{X} and {Y} bow to each other at the same time.",
                "[Two people|Two persons] [face each other and |]bow simultaneously.",
                "[Two people|Two persons] [standing face to face|facing each other] bow together.",
                "Both people bend forward in a bow [toward each other|together] at once and straighten up."};
      return {"{X} bows to {Y}, and {Y} bows back.", "{X} bows[| deeply| politely]; then {Y} returns the bow.",
              "{X} [bends forward in a bow|makes a bow] toward {Y}, who answers with a bow of their own.",
              "[Standing face to face|Facing each other], {X} bows first and {Y} bows in turn."};
    case SynthType::kWalkTogether:
      return {"{X} and {Y} walk side by side{turn}, {Y} on {X}'s {g}.",
              "[Side by side|Next to each other], {X} and {Y} walk{turn}, {Y} keeping to {X}'s {g}.",
              "{Y} walks at {X}'s {g} side as they [stroll|walk] forward{turn}.",
              "[Side by side|Shoulder to shoulder], {X} and {Y} walk{turn}; {Y} is on the {g}.",
              "{X} walks{turns} with {Y} beside them on the {g}."};
    case SynthType::kFollow:
      return {"{X} walks{turns} and {Y} follows behind.", "{Y} walks behind {X}, following them{curve}.",
              "{X} leads the way{curve} while {Y} follows [a step|a few steps] behind.",
              "{Y} [trails|follows] after {X}, who walks{curve}.",
              "{X} walks ahead{curve}, and {Y} follows [close behind|in their footsteps]."};
    case SynthType::kHandOver:
      return {"{A}, and {X} gives {Y} an object with the {h} hand, which {Y} receives with the {g} hand.",
              "{A}; {X} holds out something in the {h} hand, and {Y} reaches out with the {g} hand and takes it.",
              "{A}, and {Y} takes an item from {X}'s {h} hand using the {g} hand.",
              "{A}; {X} hands [an object|something] over from the {h} hand to {Y}'s {g} hand."};
    case SynthType::kKick:
      if (v == "block")
        return {"{X} kicks at {Y} with the {h} leg, and {Y} blocks with both arms.",
                "{X} [throws|delivers] a {h}-footed kick toward {Y}'s stomach; {Y} blocks it with crossed arms.",
                "{Y} guards with both forearms as {X} kicks with the {h} foot.",
                "[Sparring|In a fight], {X} kicks with the {h} foot and {Y} blocks the kick."};
      return {"{X} kicks at {Y} with their {h} leg, but {Y} steps back out of reach.",
              "{X} raises the {h} knee and kicks at {Y}, who steps back to avoid it.",
              "{Y} steps back from a {h}-footed kick by {X}.",
              "[Sparring|In a fight], {X} kicks with the {h} foot and {Y} steps back to avoid it."};
    case SynthType::kDance:
      if (v == "hold_hands")
        return {"{X} and {Y} hold [both|each other's] hands and dance in a circle, stepping to their {dir}.",
                "[Two people|Two persons] [join hands|hold hands] and spin around each other to the {dir}.",
                "{X} and {Y} dance, circling to their {dir} while [holding hands|keeping their hands joined].",
                "Facing each other and holding hands, two people dance in a circle, moving to their {dir}."};
      return {"[Two people|Two persons] dance around each other in a circle to their {dir}, [waving|swinging] their arms [in the air|overhead].",
              "{X} and {Y} circle to their {dir} around each other, [bouncing|bobbing] and raising their arms.",
              "Facing each other, two people dance in a circle to their {dir} with their arms up.",
              "{X} and {Y} dance with raised arms, stepping around each other to the {dir}."};
  }
  return {};
}

// How the two come together in an approach variant (a sentence start holding {X} and {Y}).
std::string approach(const std::string& variant) {
  if (variant == "actor_approaches") return "{X} [walks up to|approaches|steps over to] {Y}";
  if (variant == "partner_approaches") return "{Y} [walks up to|approaches|comes over to] {X}";
  return "{X} and {Y} [walk toward|approach|step toward] each other";  // both_approach
}

const char* side_word(int s) { return s == 0 ? "right" : s == 1 ? "left" : "other"; }

std::string expand(const std::string& tpl, const SynthRoles& r, int style, synth::Rng& rng) {
  // Every style says which of the two (first or second in the file) is who, so the caption fixes who
  // starts; "person A/B" and the ordinals are the forms that swap_caption exchanges.
  static const char* ordinal[2] = {"the first person", "the second person"};
  static const char* letter[2] = {"person A", "person B"};
  const char* const* names = style == 1 ? letter : ordinal;
  const std::string X = names[r.actor], Y = names[1 - r.actor];
  const bool curving = rng.chance(0.5);
  auto path = [&](const char* verb) {  // verb: " and turn " / " and turns "
    if (r.direction < 0) return std::string(rng.chance(0.5) ? " straight ahead" : " in a straight line");
    return std::string(curving ? ", curving to the " : verb) + side_word(r.direction);
  };
  std::string dodge_dir = r.partner_side >= 0 ? std::string("to their ") + side_word(r.partner_side) : "back";
  // Choices first ([a|b|c]: one alternative), so an alternative may hold placeholders.
  std::string filled = tpl;  // {A} first: it holds choices and placeholders of its own
  if (const size_t a = filled.find("{A}"); a != std::string::npos) filled.replace(a, 3, approach(r.variant));
  std::string chosen;
  for (size_t i = 0; i < filled.size(); ++i) {
    if (filled[i] != '[') {
      chosen += filled[i];
      continue;
    }
    const size_t end = filled.find(']', i);
    std::vector<std::string> alts(1);
    for (size_t k = i + 1; k < end; ++k) {
      if (filled[k] == '|') alts.emplace_back();
      else alts.back().push_back(filled[k]);
    }
    chosen += alts[static_cast<size_t>(rng.pick(static_cast<int>(alts.size())))];
    i = end;
  }
  std::string out;
  for (size_t i = 0; i < chosen.size(); ++i) {
    char c = chosen[i];
    if (c == '{') {
      size_t end = chosen.find('}', i);
      std::string k = chosen.substr(i + 1, end - i - 1);
      if (k == "X") out += X;
      else if (k == "Y") out += Y;
      else if (k == "h") out += side_word(r.actor_side);
      else if (k == "g" || k == "dir") out += side_word(k == "g" ? r.partner_side : r.direction);
      else if (k == "turn") out += path(" and turn ");
      else if (k == "turns") out += path(" and turns ");
      else if (k == "curve") out += r.direction < 0 ? " in a straight line" : std::string(", curving to the ") + side_word(r.direction);
      else if (k == "D") out += r.partner_side >= 0 ? "leans " + dodge_dir : "leans back";
      else if (k == "Dg") out += r.partner_side >= 0 ? "leaning " + dodge_dir : "leaning back";
      i = end;
    } else {
      out += c;
    }
  }
  std::string clean;  // collapse double spaces and spaces before punctuation left by empty choices
  for (char c : out) {
    if (c == ' ' && (clean.empty() || clean.back() == ' ')) continue;
    if ((c == ',' || c == '.' || c == ';' || c == ':') && !clean.empty() && clean.back() == ' ') clean.pop_back();
    clean += c;
  }
  if (!clean.empty() && clean[0] >= 'a' && clean[0] <= 'z') clean[0] = static_cast<char>(clean[0] - 'a' + 'A');
  return clean;
}

}  // namespace

std::vector<std::string> synth_captions(SynthType type, const SynthRoles& roles, synth::Rng& rng) {
  Pool p = pool(type, roles);
  std::vector<std::string> out;
  for (int k = 0; k < 3 && !p.empty(); ++k) {  // three different templates
    int i = rng.pick(static_cast<int>(p.size()));
    out.push_back(expand(p[static_cast<size_t>(i)], roles, rng.pick(3), rng));
    p.erase(p.begin() + i);
  }
  return out;
}

}  // namespace vimo::motion
