// The text-motion evaluator: an InterCLIP-like contrastive pair of encoders (InterGen's evaluator
// for InterHuman) whose embeddings feed FID, R-precision, MM-Dist, Diversity and MultiModality.
// Tensor names are InterCLIP's, so its official checkpoint converts (scripts/convert_interclip.py)
// and loads here unchanged.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "vimo/core/config.h"
#include "vimo/data/normalizer.h"
#include "vimo/text/tokenizer.h"

namespace vimo::eval {

// `model` section of an evaluator config; its architecture keys are stored in the weights' metadata
// ("vimo_evaluator", a JSON object) so a converted or trained evaluator loads without a config.
struct EvaluatorOptions {
  int64_t motion_features = 262;  // F: features per person of the input [B, T, 2F]
  int64_t drop_features = 4;      // the last features of each person not seen (InterHuman: foot contacts)
  int64_t latent_dim = 128;       // motion transformer width (InterCLIP: 1024)
  int64_t ff_size = 256;          // InterCLIP: 2048
  int64_t num_layers = 2;         // InterCLIP: 8
  int64_t num_heads = 4;          // InterCLIP: 8
  double dropout = 0.1;
  int64_t max_frames = 300;       // longest motion the positional encoding is used for (InterGen: 300 frames)
  int64_t frame_stride = 1;       // every n-th frame is seen (InterCLIP: 1)
  double logit_scale_init = 1.0;  // initial latent_scale² of the contrastive loss (InterCLIP: 1)
  std::string text_tokenizer = "sentencepiece";  // sentencepiece (trained on the captions) | clip_bpe
  int64_t text_vocab = 0;         // 0: the tokenizer's vocabulary size (InterCLIP: CLIP's 49408)
  int64_t text_vocab_size = 800;  // sentencepiece: pieces of the tokenizer trained on the captions
  int64_t text_context = 40;      // ids per caption, padded (InterCLIP: CLIP's 77)
  int64_t text_width = 128;       // InterCLIP: 768
  int64_t text_ff = 256;          // InterCLIP: 2048
  int64_t text_layers = 2;        // InterCLIP: 8
  int64_t text_heads = 4;         // InterCLIP: 8
  int64_t embed_dim = 512;
  std::string activation = "gelu";
  template <class V> void visit(V& v) {
    using core::opt;
    auto a = [] { return core::opt().architecture(); };
    v.key("motion_features", motion_features, "features per person of the motion input", a().min(1));
    v.key("drop_features", drop_features, "last features of each person left out (InterHuman: 4 foot contacts)",
          a().min(0));
    v.key("latent_dim", latent_dim, "motion transformer width", a().min(1));
    v.key("ff_size", ff_size, "motion transformer feed-forward width", a().min(1));
    v.key("num_layers", num_layers, "motion transformer layers", a().min(1));
    v.key("num_heads", num_heads, "motion attention heads (divides latent_dim)", a().min(1));
    v.key("dropout", dropout, "dropout of both transformers while training", opt().min(0).max(1));
    v.key("max_frames", max_frames, "frames per motion; longer clips are cut to their first max_frames",
          a().min(1));
    v.key("frame_stride", frame_stride, "every n-th frame is seen (1 as InterCLIP; 3 = 10 fps of 30 fps data)",
          a().min(1).max(30));
    v.key("logit_scale_init", logit_scale_init, "initial logit scale (latent_scale²) of the contrastive loss",
          opt().min(1e-3).max(1e4));
    v.key("text_tokenizer", text_tokenizer,
          "sentencepiece (trained on the train captions, stored in the run) | clip_bpe (CLIP's merges file, "
          "eval.clip_vocab)",
          a().one_of({"sentencepiece", "clip_bpe"}));
    v.key("text_vocab", text_vocab, "rows of the token embedding; 0 = the tokenizer's vocabulary", a().min(0));
    v.key("text_vocab_size", text_vocab_size, "sentencepiece: pieces of the tokenizer trained on the captions",
          opt().min(16));
    v.key("text_context", text_context, "token ids per caption (start, pieces, end, padding)", a().min(3));
    v.key("text_width", text_width, "text transformer width", a().min(1));
    v.key("text_ff", text_ff, "text transformer feed-forward width", a().min(1));
    v.key("text_layers", text_layers, "text transformer layers", a().min(1));
    v.key("text_heads", text_heads, "text attention heads (divides text_width)", a().min(1));
    v.key("embed_dim", embed_dim, "joint embedding size (InterCLIP: 512)", a().min(1));
    v.key("activation", activation, "feed-forward activation", a().one_of({"gelu", "relu"}));
  }
  nlohmann::json to_json() const;
  // Every architecture key must be present; `where` names the source in errors.
  static EvaluatorOptions from_json(const nlohmann::json& j, const std::string& where);
};

// torch.nn.TransformerEncoderLayer (post-norm, batch_first) with its parameter names:
// self_attn.{in_proj_weight, in_proj_bias, out_proj}, linear1, linear2, norm1, norm2.
class EncoderLayerImpl : public torch::nn::Module {
 public:
  EncoderLayerImpl(int64_t width, int64_t heads, int64_t ff, double dropout, bool gelu);
  // x [B, S, W]; keep [B, S] bool (true: a real position) or undefined (attend everything).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& keep);

 private:
  int64_t heads_;
  double dropout_;
  bool gelu_;
  std::shared_ptr<torch::nn::Module> attn_;
  torch::Tensor in_w_, in_b_;
  torch::nn::Linear out_proj_{nullptr}, linear1_{nullptr}, linear2_{nullptr};
  torch::nn::LayerNorm norm1_{nullptr}, norm2_{nullptr};
};
TORCH_MODULE(EncoderLayer);

class EvaluatorImpl : public torch::nn::Module {
 public:
  explicit EvaluatorImpl(const EvaluatorOptions& o);
  const EvaluatorOptions& options() const { return o_; }
  // motion [B, T, 2F] (the model's input: normalized features of person A then B), lengths [B] int64
  // (1 ≤ length ≤ T) -> [B, embed_dim], L2-normalized × latent_scale (InterCLIP's encode_motion).
  torch::Tensor encode_motion(const torch::Tensor& motion, const torch::Tensor& lengths);
  // ids [B, text_context] int64 (start, pieces, end, padding); pooled at the first `eot` id
  // -> [B, embed_dim], L2-normalized × latent_scale (InterCLIP's encode_text).
  torch::Tensor encode_text(const torch::Tensor& ids, int64_t eot);
  // The symmetric InfoNCE loss of matched rows with logit scale latent_scale² (InterCLIP's).
  // same [B, B] bool (optional): pairs (i, j), i != j, whose captions are the same text; they are
  // not counted as negatives of each other (a caption that fits two rows is no mistake).
  torch::Tensor contrastive_loss(const torch::Tensor& motion_emb, const torch::Tensor& text_emb,
                                 const torch::Tensor& same = {});
  torch::Tensor latent_scale() const { return latent_scale_; }

 private:
  EvaluatorOptions o_;
  // motion_encoder.{query_token, embed_motion, transformer.layers.N, out_ln, out}
  std::shared_ptr<torch::nn::Module> menc_;
  torch::Tensor query_token_;
  torch::nn::Linear embed_motion_{nullptr}, mout_{nullptr}, tout_{nullptr};
  std::vector<EncoderLayer> mlayers_, tlayers_;
  torch::nn::LayerNorm out_ln_{nullptr}, text_ln_{nullptr};
  torch::nn::Embedding token_embedding_{nullptr};
  torch::Tensor positional_embedding_, latent_scale_, pe_;
};
TORCH_MODULE(Evaluator);

// Sinusoidal positions [n, d] as InterGen's PositionalEncoding (sin on even columns, cos on odd).
torch::Tensor sinusoidal_positions(int64_t n, int64_t d);

// An evaluator with its text tokenizer, ready to embed captions and motions.
struct LoadedEvaluator {
  Evaluator model{nullptr};
  std::shared_ptr<text::TextTokenizer> tokenizer;  // null when none was found (ids-only use)
  int64_t sot = 0, eot = 0;                        // start and end ids around each caption
  std::string path;                                // the weights file
  std::map<std::string, std::string> metadata;
  // Model input = normalizer.normalize(features): a trained run's stats.safetensors ("features":
  // "normalized" in the metadata), else the identity (InterCLIP reads raw features).
  data::Normalizer normalizer;
  // Captions -> [N, text_context] int64.
  torch::Tensor tokenize(const std::vector<std::string>& captions) const;
  // The features the evaluator was trained on: "data.packed" of the training run ("" when converted).
  std::string packed_dir() const;
};

// `path`: an evaluator run directory (best/ if present, else the latest checkpoint), a checkpoint
// directory, or a .safetensors file carrying "vimo_evaluator" metadata (a converted InterCLIP).
// `clip_vocab`: CLIP's merges file for a clip_bpe evaluator ("" = look beside the weights and in the
// run). Missing tensors, shapes that disagree with the metadata and unknown layouts are named errors.
LoadedEvaluator load_evaluator(const std::string& path, const std::string& clip_vocab = "",
                               torch::Device device = torch::kCPU);

// Normalized clips [T_i, P_i, F] (P_i 1 or 2; an absent person is zeros) -> motion embeddings [N, D], in
// batches of `batch` (eval mode, no grad; each clip cut to max_frames).
torch::Tensor embed_clips(Evaluator& model, const std::vector<torch::Tensor>& clips, int64_t batch = 96);
// Ids [N, text_context] -> text embeddings [N, D] in batches (eval mode, no grad).
torch::Tensor embed_ids(Evaluator& model, const torch::Tensor& ids, int64_t eot, int64_t batch = 256);

// Caption -> [context] ids: start, the tokenizer's pieces (cut so that the end id fits), end, zeros.
std::vector<int64_t> caption_ids(const text::TextTokenizer& tok, const std::string& caption, int64_t context,
                                 int64_t sot, int64_t eot);

}  // namespace vimo::eval
