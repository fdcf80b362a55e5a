// Stage 3: the synthetic conversation vocabulary, the loss on assistant turns only, and a multi-turn
// answer that depends on the motion of the first turn.
#include <gtest/gtest.h>

#include "vimo/data/conversation_synth.h"

using namespace vimo;

TEST(ConversationSynth, NamedInteractionsFindsEachTypeByItsWordsInOrder) {
  EXPECT_EQ(data::named_interactions("Before this, they shook hands."), std::vector<std::string>{"handshake"});
  EXPECT_EQ(data::named_interactions("One pushed the other, then they danced together."),
            (std::vector<std::string>{"push", "dance"}));
  EXPECT_EQ(data::named_interactions("They walked together after that."), std::vector<std::string>{"walk_together"});
  EXPECT_TRUE(data::named_interactions("A person bends the elbow.").empty());  // "elbow" is no bow
  EXPECT_EQ(data::named_interactions("One handed an object to the other"), std::vector<std::string>{"hand_over"});
  EXPECT_EQ(data::next_interactions("handshake").size(), 2u);
}
