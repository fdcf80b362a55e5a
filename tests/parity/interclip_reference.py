"""A PyTorch transcription of InterGen's InterCLIP evaluator (datasets/evaluator_models.py InterCLIP and
models/nets.py MotionEncoder) with configurable sizes, the reference for `vimo eval embed`.

Parameter and buffer names are InterCLIP's (they are the contract with scripts/convert_interclip.py and
vimo). The CLIP token and position embeddings are plain parameters here, so the `clip` package is not
needed. encode_motion / encode_text return the embeddings InterGen compares: the projection divided by its
L2 norm and multiplied by latent_scale, [B, embed_dim]."""
import math

import torch
from torch import nn


class SinusoidPositions(nn.Module):
    """Adds the fixed sin/cos table (sin on even columns, cos on odd) to [B, T, D] inputs."""

    def __init__(self, width, max_len=2000):
        super().__init__()
        pos = torch.arange(max_len, dtype=torch.float32)[:, None]
        freq = torch.exp(torch.arange(0, width, 2, dtype=torch.float32) * (-math.log(10000.0) / width))
        table = torch.zeros(max_len, width)
        table[:, 0::2] = torch.sin(pos * freq)
        table[:, 1::2] = torch.cos(pos * freq)
        self.register_buffer("pe", table)

    def forward(self, x):
        return x + self.pe[: x.shape[1]][None]


def encoder_stack(width, heads, ff, layers, dropout):
    layer = nn.TransformerEncoderLayer(d_model=width, nhead=heads, dim_feedforward=ff, dropout=dropout,
                                       activation="gelu", batch_first=True)
    # enable_nested_tensor=False only avoids the prototype nested-tensor path (and its warning); masked
    # positions never reach the pooled token either way.
    return nn.TransformerEncoder(layer, num_layers=layers, enable_nested_tensor=False)


class MotionEncoderReference(nn.Module):
    def __init__(self, motion_features, drop_features, latent_dim, ff_size, num_layers, num_heads, embed_dim,
                 dropout):
        super().__init__()
        self.motion_features = motion_features
        self.drop_features = drop_features
        kept = motion_features - drop_features
        self.query_token = nn.Parameter(torch.randn(1, latent_dim))
        self.embed_motion = nn.Linear(2 * kept, latent_dim)
        self.sequence_pos_encoder = SinusoidPositions(latent_dim, max_len=2000)
        self.transformer = encoder_stack(latent_dim, num_heads, ff_size, num_layers, dropout)
        self.out_ln = nn.LayerNorm(latent_dim)
        self.out = nn.Linear(latent_dim, embed_dim)

    def forward(self, motions, lengths):
        """motions [B, T, 2*F] (person 1 then person 2), lengths [B] -> unnormalized [B, embed_dim]."""
        b, t, _ = motions.shape
        f = self.motion_features
        x = motions.reshape(b, t, 2, f)[..., : f - self.drop_features].reshape(b, t, -1)
        h = self.embed_motion(x)
        h = torch.cat([self.query_token.expand(b, -1)[:, None], h], dim=1)
        frames_valid = torch.arange(t, device=motions.device)[None] < lengths.to(motions.device)[:, None]
        valid = torch.cat([torch.ones(b, 1, dtype=torch.bool, device=motions.device), frames_valid], dim=1)
        h = self.sequence_pos_encoder(h)
        h = self.transformer(h, src_key_padding_mask=~valid)
        h = self.out_ln(h)
        return self.out(h[:, 0])


class InterClipReference(nn.Module):
    def __init__(self, motion_features=262, drop_features=4, latent_dim=1024, ff_size=2048, num_layers=8,
                 num_heads=8, text_vocab=49408, text_context=77, text_width=768, text_ff=2048, text_layers=8,
                 text_heads=8, embed_dim=512, dropout=0.1):
        super().__init__()
        self.motion_encoder = MotionEncoderReference(motion_features, drop_features, latent_dim, ff_size,
                                                     num_layers, num_heads, embed_dim, dropout)
        self.token_embedding = nn.Embedding(text_vocab, text_width)
        self.positional_embedding = nn.Parameter(torch.randn(text_context, text_width) * 0.01)
        self.latent_scale = nn.Parameter(torch.ones(1))
        self.textTransEncoder = encoder_stack(text_width, text_heads, text_ff, text_layers, dropout)
        self.text_ln = nn.LayerNorm(text_width)
        self.out = nn.Linear(text_width, embed_dim)

    def _scale(self, e):
        return e / e.norm(dim=-1, keepdim=True) * self.latent_scale

    def encode_motion(self, motions, lengths):
        return self._scale(self.motion_encoder(motions, lengths))

    def encode_text(self, ids):
        """ids [B, context] CLIP token ids (end-of-text is the largest id; every position is attended)."""
        h = self.token_embedding(ids) + self.positional_embedding
        h = self.textTransEncoder(h)
        h = self.text_ln(h)
        h = h[torch.arange(ids.shape[0], device=ids.device), ids.argmax(dim=-1)]
        return self._scale(self.out(h))
