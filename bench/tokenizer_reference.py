"""PyTorch reference of vimo's RQ-VAE (same layers, names, quantizer and losses).

Used by bench/tokenizer_bench (speed, side by side with vimo) and tests/parity (vimo's weights load
into it and give the same outputs).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class ResBlock(nn.Module):
    def __init__(self, width, dilation):
        super().__init__()
        self.conv1 = nn.Conv1d(width, width, 3, padding=dilation, dilation=dilation)
        self.conv2 = nn.Conv1d(width, width, 1)

    def forward(self, x):
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class Resnet1D(nn.Module):
    def __init__(self, width, depth, growth):
        super().__init__()
        self.model = nn.Sequential(*[ResBlock(width, growth ** i) for i in reversed(range(depth))])

    def forward(self, x):
        return self.model(x)


def encoder(o):
    layers = [nn.Conv1d(o["feature_dim"], o["width"], 3, padding=1), nn.ReLU()]
    for _ in range(o["down_t"]):
        layers.append(nn.Sequential(nn.Conv1d(o["width"], o["width"], 4, 2, 1),
                                    Resnet1D(o["width"], o["depth"], o["dilation_growth"])))
    layers.append(nn.Conv1d(o["width"], o["code_dim"], 3, padding=1))
    m = nn.Module()
    m.model = nn.Sequential(*layers)
    return m


def decoder(o):
    layers = [nn.Conv1d(o["code_dim"], o["width"], 3, padding=1), nn.ReLU()]
    for _ in range(o["down_t"]):
        layers.append(nn.Sequential(Resnet1D(o["width"], o["depth"], o["dilation_growth"]),
                                    nn.Upsample(scale_factor=2.0, mode="nearest"),
                                    nn.Conv1d(o["width"], o["width"], 3, padding=1)))
    layers += [nn.Conv1d(o["width"], o["width"], 3, padding=1), nn.ReLU(),
               nn.Conv1d(o["width"], o["feature_dim"], 3, padding=1)]
    m = nn.Module()
    m.model = nn.Sequential(*layers)
    return m


class Quantizer(nn.Module):
    def __init__(self, k, d, decay, threshold):
        super().__init__()
        self.k, self.decay, self.threshold = k, decay, threshold
        self.register_buffer("codebook", torch.zeros(k, d))
        self.register_buffer("code_sum", torch.zeros(k, d))
        self.register_buffer("code_count", torch.ones(k))
        self.register_buffer("inited", torch.zeros(1))

    def nearest(self, x):
        dist = self.codebook.pow(2).sum(1)[None] - 2 * x @ self.codebook.t()
        return dist.argmin(1)

    def forward(self, x, update):
        if update and self.inited.item() == 0:
            rows = x.detach()[torch.randint(x.shape[0], (self.k,), device=x.device)]
            self.codebook.copy_(rows); self.code_sum.copy_(rows); self.code_count.fill_(1); self.inited.fill_(1)
        idx = self.nearest(x.detach())
        q = self.codebook[idx]
        if update:
            with torch.no_grad():
                onehot = torch.zeros(self.k, x.shape[0], device=x.device)
                onehot.scatter_(0, idx[None], 1.0)
                self.code_sum.mul_(self.decay).add_(onehot @ x.detach(), alpha=1 - self.decay)
                self.code_count.mul_(self.decay).add_(onehot.sum(1), alpha=1 - self.decay)
                alive = (self.code_count >= self.threshold).float()[:, None]
                rand = x.detach()[torch.randint(x.shape[0], (self.k,), device=x.device)]
                self.codebook.copy_(alive * self.code_sum / self.code_count.clamp_min(1e-6)[:, None]
                                    + (1 - alive) * rand)
        return q, idx, F.mse_loss(x, q.detach())


class ResidualQuantizer(nn.Module):
    def __init__(self, o):
        super().__init__()
        self.dropout = o["quantizer_dropout"]
        self.layers = nn.ModuleList(Quantizer(o["codebook_size"], o["code_dim"], o["ema_decay"],
                                              o["reset_threshold"]) for _ in range(o["num_quantizers"]))

    def forward(self, z, use=0):
        B, D, T = z.shape
        Q = len(self.layers)
        use = Q if use <= 0 or use > Q else use
        if self.training and use == Q and Q > 1 and self.dropout > 0 and torch.rand(1).item() < self.dropout:
            use = int(torch.randint(1, Q, (1,)).item())
        x = z.permute(0, 2, 1).reshape(B * T, D).float()
        residual, total, commit = x, torch.zeros_like(x), 0.0
        idx = torch.full((B * T, Q), -1, dtype=torch.long, device=z.device)
        for q in range(use):
            c, i, l = self.layers[q](residual, self.training)
            residual = residual - c
            total = total + c
            idx[:, q] = i
            commit = commit + l
        total = x + (total - x).detach()
        return total.reshape(B, T, D).permute(0, 2, 1), idx.reshape(B, T, Q), commit / use


class Normalizer(nn.Module):
    """(layout(x) - mean) / std, where layout re-expresses the 22 joint positions (dims 0..65) as the
    root followed by joints minus the root when root_relative."""

    def __init__(self, dim, root_relative):
        super().__init__()
        self.root_relative = root_relative and dim >= 66
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def _layout(self, x, sign):
        if not self.root_relative:
            return x
        p = x[..., :66].reshape(*x.shape[:-1], 22, 3)
        p = torch.cat([p[..., :1, :], p[..., 1:, :] + sign * p[..., :1, :]], -2)
        return torch.cat([p.reshape(*x.shape[:-1], 66), x[..., 66:]], -1)

    def normalize(self, x):
        return (self._layout(x, -1) - self.mean) / self.std

    def denormalize(self, y):
        return self._layout(y * self.std + self.mean, 1)


class Rqvae(nn.Module):
    def __init__(self, **o):
        super().__init__()
        defaults = dict(feature_dim=262, width=512, depth=3, dilation_growth=3, down_t=2, code_dim=512,
                        codebook_size=512, num_quantizers=6, ema_decay=0.99, reset_threshold=1.0,
                        quantizer_dropout=0.2, root_relative=True)
        defaults.update(o)
        self.o = defaults
        self.encoder = encoder(defaults)
        self.quantizer = ResidualQuantizer(defaults)
        self.decoder = decoder(defaults)
        self.normalizer = Normalizer(defaults["feature_dim"], defaults["root_relative"])

    def forward(self, x, use=0):
        """x: raw features [B, T, F] -> (recon raw [B, T, F], recon normalized, codes [B, T/4, Q], commit)."""
        n = self.normalizer
        z = self.encoder.model(n.normalize(x).permute(0, 2, 1))
        q, idx, commit = self.quantizer(z, use)
        y = self.decoder.model(q.to(z.dtype)).permute(0, 2, 1).float()
        return n.denormalize(y), y, idx, commit


def joints_of(f):
    return f[..., :66].reshape(*f.shape[:-1], 22, 3)


def stage1_loss(model, x, w=dict(recon=1.0, joints=0.5, velocity=0.5, commit=0.02)):
    """The same objective as vimo's stage-1 recipe."""
    recon, recon_n, _, commit = model(x)
    xn = model.normalizer.normalize(x)
    pj, gj = joints_of(recon), joints_of(x)
    vel = 10 * ((pj[:, 1:] - pj[:, :-1]) - (gj[:, 1:] - gj[:, :-1])).abs().mean()
    return (w["recon"] * F.smooth_l1_loss(recon_n, xn) + w["joints"] * (pj - gj).abs().mean()
            + w["velocity"] * vel + w["commit"] * commit)
