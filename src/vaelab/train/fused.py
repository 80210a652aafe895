"""A hand-written training step for the plain MLP VAE and the VampPrior VAE, on the ELBO or on
the K-sample IWAE bound (the iwae and vamp-iwae families): forward, backward and Adam, no
autograd.

The autograd step of a small MLP VAE spends a third of its time outside the matrix products:
graph bookkeeping, transposed weight gradients copied to the parameters' layout, and separate
elementwise passes. This step computes exactly the same gradients (tested against autograd) with
one GEMM per product written straight into preallocated ``.grad`` buffers. The trainer uses it
when the model qualifies (``supports``); anything else takes the autograd path.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim import optimizer as opt_mod

from vaelab.likelihoods import LOG_2PI, Bernoulli, Gaussian, sigmoid_and_log_abs
from vaelab.models import BaseModel
from vaelab.models.vamp import component_log_densities
from vaelab.nets.pixel_context import PixelContextLikelihood
from vaelab.train.lean_adam import LeanAdam

_ACTS = {nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.Tanh}


def _linears(stack: nn.Sequential, head: nn.Linear) -> tuple[list[nn.Linear], nn.Module] | None:
    """The Linear layers of an MLP body + head and its one activation type, or None."""
    layers: list[nn.Linear] = []
    act: nn.Module | None = None
    for mod in stack:
        if isinstance(mod, nn.Linear):
            layers.append(mod)
        elif type(mod) in _ACTS and (act is None or type(act) is type(mod)):
            act = mod
        else:
            return None
    if act is None and layers:
        return None
    return [*layers, head], (act or nn.ReLU())


def _iwae_families() -> tuple[type, ...]:
    from vaelab.models.iwae import IWAE
    from vaelab.models.vamp import VampIWAE

    return IWAE, VampIWAE


def _fused_families() -> tuple[type, ...]:
    """The model classes the fused step implements."""
    from vaelab.models.vae import VAE
    from vaelab.models.vamp import VampVAE

    return VAE, VampVAE, *_iwae_families()


def settings_allow(t: Any, cuda: bool) -> bool:
    """Whether the training settings (a ``TrainConfig``) on a CUDA device or not leave the fused
    step possible; the model decides the rest (``supports``)."""
    return t.fused_step and not t.compile and t.precision == "fp32" \
        and not (cuda and t.cuda_graphs)


def may_apply(cfg: Any) -> bool:
    """Whether a run's settings (a ``vaelab.config.Config``) leave the fused step possible; the
    model built from them decides (``supports``). Read before the data loads."""
    from vaelab.models import MODELS

    t, m = cfg.train, cfg.model
    cuda = t.device.startswith("cuda") or (t.device == "auto" and torch.cuda.is_available())
    return settings_allow(t, cuda) and m.arch == "mlp" \
        and MODELS.get(m.model) in _fused_families()


def supports(model: BaseModel) -> bool:
    """True for the plain MLP VAE or VampPrior VAE (on the ELBO or the IWAE bound) with a
    Bernoulli or fixed-sigma Gaussian likelihood, with or without a pixel context."""
    if type(model) not in _fused_families() or model.config.free_bits > 0 \
            or model.config.capacity_max > 0:
        return False
    if type(_base_likelihood(model.likelihood)) not in (Bernoulli, Gaussian):
        return False
    from vaelab.nets.mlp import MLPDecoder, MLPEncoder

    enc, dec = getattr(model, "encoder", None), getattr(model, "decoder", None)
    if not (isinstance(enc, MLPEncoder) and isinstance(dec, MLPDecoder)):
        return False
    return _linears(enc.body, enc.head) is not None and _linears(dec.body, dec.head) is not None


def _base_likelihood(lik: Any) -> Any:
    """The likelihood a pixel context wraps, or ``lik`` itself."""
    return lik.base if isinstance(lik, PixelContextLikelihood) else lik


def _mlp_forward(layers: list[nn.Linear], act: nn.Module, h: Tensor
                 ) -> tuple[Tensor, list[Tensor], list[Tensor]]:
    """Run hidden layers + head; return the output, each layer's input, each pre-activation."""
    inputs, pres = [h], []
    for lin in layers[:-1]:
        a = torch.addmm(lin.bias, h, lin.weight.t())
        h = _act_forward(act, a)
        pres.append(a)
        inputs.append(h)
    head = layers[-1]
    return torch.addmm(head.bias, h, head.weight.t()), inputs, pres


def _act_forward(act: nn.Module, a: Tensor) -> Tensor:
    """``act(a)``; ELU with alpha <= 1 as ``max(a, alpha * (exp(min(a, 0)) - 1))``, the same
    function (below zero alpha (e^a - 1) >= a when alpha <= 1; above it, 0 < a) in three
    vectorised passes, quicker on CPU than torch's ELU kernel."""
    if isinstance(act, nn.ELU) and 0.0 <= act.alpha <= 1.0:
        return torch.maximum(a, torch.clamp(a, max=0.0).exp_().sub_(1.0).mul_(act.alpha))
    return act(a)


def _act_backward(act: nn.Module, grad: Tensor, a: Tensor, h: Tensor) -> Tensor:
    """d act(a) / d a times ``grad``; ``h`` = act(a)."""
    if isinstance(act, nn.ReLU):
        return torch.ops.aten.threshold_backward(grad, h, 0.0)
    if isinstance(act, nn.LeakyReLU):
        return torch.ops.aten.leaky_relu_backward(grad, a, act.negative_slope, False)
    if isinstance(act, nn.Tanh):
        return torch.ops.aten.tanh_backward(grad, h)
    if isinstance(act, nn.ELU):
        if act.alpha >= 0.0:  # from the output: the slope below zero is h + alpha, no exp
            return torch.ops.aten.elu_backward(grad, act.alpha, 1.0, 1.0, True, h)
        return torch.ops.aten.elu_backward(grad, act.alpha, 1.0, 1.0, False, a)
    if isinstance(act, nn.GELU):
        return torch.ops.aten.gelu_backward(grad, a, approximate=act.approximate)
    raise TypeError(type(act))


class DirectAdam:
    """``optimizer.step()`` of a one-group fused Adam as the two kernels it runs, without the
    Optimizer wrapper's per-step Python work (tensor grouping, hooks, profiling: about 0.14 ms a
    step, a twentieth of the 784-400-20 VAE's CPU step). The state stays the optimiser's own
    (checkpoints and ``load_state_dict`` see no difference); whenever it does not qualify
    (hooks, amsgrad, a tensor learning rate, fresh or replaced state) ``optimizer.step()``
    runs instead. The update is identical (tested)."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer
        self._lists: tuple[list[Tensor], ...] | None = None

    def _qualifies(self) -> bool:
        opt = self.optimizer
        if type(opt) not in (torch.optim.Adam, LeanAdam) or len(opt.param_groups) != 1:
            return False
        g = opt.param_groups[0]
        return bool(g.get("fused")) and not g["amsgrad"] and not g["maximize"] \
            and not g.get("decoupled_weight_decay") and not isinstance(g["lr"], Tensor) \
            and not opt._optimizer_step_pre_hooks and not opt._optimizer_step_post_hooks \
            and not opt_mod._global_optimizer_pre_hooks \
            and not opt_mod._global_optimizer_post_hooks and hasattr(torch, "_fused_adam_")

    def _state_lists(self, create: bool = True) -> tuple[list[Tensor], ...] | None:
        """The update's tensor lists from the optimiser's state; a fresh state is created as
        Adam's first step creates it (a float32 ``step`` and zero moments) when ``create``."""
        params = [p for p in self.optimizer.param_groups[0]["params"] if p.grad is not None]
        st = self.optimizer.state
        if not params:
            return None
        if create and all(len(st[p]) == 0 for p in params):
            for p in params:
                st[p]["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
                st[p]["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                st[p]["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        if not all("exp_avg" in st[p] for p in params):
            return None
        return (params, [p.grad for p in params], [st[p]["exp_avg"] for p in params],
                [st[p]["exp_avg_sq"] for p in params], [st[p]["step"] for p in params])

    def _current(self) -> bool:
        """The cached lists still are the optimiser's tensors (not replaced by a load)."""
        if self._lists is None:
            return False
        params, grads, exp_avgs = self._lists[:3]
        state = self.optimizer.state
        return all(p.grad is g for p, g in zip(params, grads, strict=True)) \
            and state[params[0]].get("exp_avg") is exp_avgs[0] \
            and state[params[-1]].get("exp_avg") is exp_avgs[-1]

    def step(self) -> None:
        if not self._current():
            self._lists = self._state_lists() if self._qualifies() else None
            self.optimizer._opt_called = True  # what a scheduler checks that step() has set
            if self._lists is None:
                self.optimizer.step()  # creates (or uses) the state; then cache its tensors
                if self._qualifies():
                    self._lists = self._state_lists(create=False)
                return
        if not self._qualifies():
            self._lists = None
            self.optimizer.step()
            return
        g = self.optimizer.param_groups[0]
        params, grads, exp_avgs, exp_avg_sqs, steps = self._lists
        beta1, beta2 = g["betas"]
        torch._foreach_add_(steps, 1)
        torch._fused_adam_(params, grads, exp_avgs, exp_avg_sqs, [], steps, amsgrad=False,
                           lr=float(g["lr"]), beta1=float(beta1), beta2=float(beta2),
                           weight_decay=float(g["weight_decay"]), eps=float(g["eps"]),
                           maximize=False, grad_scale=None, found_inf=None)


def vamp_prior_grads(z: Tensor, mu_p: Tensor, lv_p: Tensor, weights: Tensor | None = None
                     ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """log p(z) under a VampPrior with components (mu_p, lv_p) (K, L) for z (b, L), and its
    gradients with respect to z (per row), mu_p and lv_p (summed over rows, each row weighted
    by ``weights`` (b,) when given), in closed form.

    As ``vamp.mixture_log_density``, in float64; with responsibilities r (b, K) and
    precisions P = exp(-lv_p):
    d/dz = r @ (mu_p P) - z (r @ P), d/dmu_p = P (r^T z - mu_p r_k),
    d/dlv_p = (P (r^T z^2 - 2 mu_p r^T z + mu_p^2 r_k) - r_k) / 2.
    """
    log_p, r = vamp_responsibilities(z, mu_p, lv_p)
    d_z, d_m, d_v = vamp_grads_from(r, z, mu_p, lv_p, weights)
    return log_p, d_z, d_m, d_v


def vamp_responsibilities(z: Tensor, mu_p: Tensor, lv_p: Tensor) -> tuple[Tensor, Tensor]:
    """log p(z) in z's dtype and the components' responsibilities r (b, K) in float64."""
    comp = component_log_densities(z.double(), mu_p.double(), lv_p.double())
    lse = torch.logsumexp(comp, dim=-1)
    return (lse - math.log(mu_p.shape[0])).to(z.dtype), torch.exp(comp - lse[:, None])


def vamp_grads_from(r: Tensor, z: Tensor, mu_p: Tensor, lv_p: Tensor,
                    weights: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """``vamp_prior_grads``'s three gradients from the responsibilities ``r``."""
    zf, m, v = z.double(), mu_p.double(), lv_p.double()
    prec = torch.exp(-v)
    mp = m * prec
    d_z = r @ mp - zf * (r @ prec)
    if weights is not None:
        r = r * weights.double()[:, None]
    rk = r.sum(0)[:, None]
    rz = r.T @ zf
    d_m = prec * rz - mp * rk
    d_v = 0.5 * (prec * (r.T @ zf.square()) - 2 * mp * rz + m * mp * rk - rk)
    return d_z.to(z.dtype), d_m.to(z.dtype), d_v.to(z.dtype)


class FusedVAEStep:
    """Callable ``step(xb, yb) -> tensor([total, recon, kl])`` that also updates the weights.

    The plain VAE's KL is the closed-form Gaussian one; a VampPrior VAE encodes its
    pseudo-inputs with the batch (one encoder pass over b + K rows, as ``VampVAE.loss``), takes
    the single-sample KL log q(z | x) - log p(z) and sends the prior's gradient back through the
    pseudo-input rows to the pseudo-inputs themselves. The IWAE families decode ``iwae_k``
    samples per example; the bound's gradient is each sample's gradient of log w weighted by
    its normalised importance weight (and the step returns the bound again as ``iwae_nll``).
    A pixel context is added to the decoder's output once per example (all samples share it);
    its weights' gradient comes from the output gradient summed over the samples.
    """

    def __init__(self, model: BaseModel, optimizer: torch.optim.Optimizer,
                 grad_clip: float | None = None) -> None:
        enc = _linears(model.encoder.body, model.encoder.head)
        dec = _linears(model.decoder.body, model.decoder.head)
        assert enc is not None and dec is not None
        self.model = model
        self.enc, self.enc_act = enc
        self.dec, self.dec_act = dec
        self.optimizer = optimizer
        self.adam = DirectAdam(optimizer)
        self.grad_clip = grad_clip
        self.latent = model.latent_dim
        self.params = [p for p in model.parameters()]
        self.pseudo: nn.Parameter | None = getattr(model, "pseudo", None)
        self.context = model.likelihood if isinstance(model.likelihood,
                                                       PixelContextLikelihood) else None
        lik = _base_likelihood(model.likelihood)
        self.bernoulli = isinstance(lik, Bernoulli)
        self.inv_var = 1.0 if self.bernoulli else 1.0 / lik.sigma**2
        self.log_norm = 0.0 if self.bernoulli else lik._log_norm
        self.k = model.config.iwae_k if isinstance(model, _iwae_families()) else 0
        """Importance samples of the IWAE bound; 0: the ELBO."""

    def _ensure_grads(self) -> None:
        for p in self.params:
            if p.grad is None or p.grad.shape != p.shape:
                p.grad = torch.zeros_like(p)

    def _kl_grads(self, e: Tensor, b: int, std: Tensor, eps: Tensor, z: Tensor, dz: Tensor,
                  scale: float) -> tuple[Tensor, Tensor]:
        """The KL's sum over the batch and the gradient of the objective with respect to the
        encoder's output ``e`` (its first ``b`` rows the batch, the rest pseudo-inputs);
        ``dz`` is the reconstruction term's gradient with respect to z, ``scale`` = c / b."""
        lat = self.latent
        mu, lv = e[:b, :lat], e[:b, lat:]
        if self.pseudo is None:
            var = std.square()
            kl_sum = 0.5 * (mu.square() + var - 1.0 - lv).sum()
            dlv = dz * eps * (0.5 * std) + (0.5 * scale) * (var - 1.0)
            return kl_sum, torch.cat([dz + scale * mu, dlv], dim=1)
        log_p, d_z, d_m, d_v = vamp_prior_grads(z, e[b:, :lat], e[b:, lat:])
        log_q = -0.5 * (eps.square() + lv + LOG_2PI).sum(-1)
        kl_sum = (log_q - log_p).sum()
        dz = dz - scale * d_z
        dlv = dz * eps * (0.5 * std) - 0.5 * scale
        rows = torch.cat([dz, dlv], dim=1)
        prior_rows = torch.cat([d_m, d_v], dim=1).mul_(-scale)
        return kl_sum, torch.cat([rows, prior_rows], dim=0)

    def forward_backward(self, xb: Tensor) -> Tensor:
        """Fill every parameter's .grad with d(objective)/d(param); return the loss parts
        (total, recon, kl, then the family's extras)."""
        return self.iwae_forward_backward(xb) if self.k else self.elbo_forward_backward(xb)

    @torch.no_grad()
    def elbo_forward_backward(self, xb: Tensor) -> Tensor:
        """The ELBO's gradient in every .grad; return [total, recon, kl]."""
        self._ensure_grads()
        model = self.model
        x, b, e, hs, pres = self._encode(xb)
        mu, lv = e[:b, : self.latent], e[:b, self.latent :]
        std = torch.exp(0.5 * lv)
        eps = torch.randn_like(mu)
        z = mu + std * eps
        logits, dhs, dpres = _mlp_forward(self.dec, self.dec_act, z)
        windows = self._add_context(xb, logits, b)
        # objective
        if self.bernoulli:  # sum(softplus(l) - x l) from the sigmoid the gradient needs
            s, log_m = sigmoid_and_log_abs(logits)
            recon_sum = (logits.clamp_min(0.0).sum() - torch.dot(x.reshape(-1), logits.reshape(-1))
                         - log_m.sum())
            g = s.sub_(x)
        else:
            g = logits - x
            recon_sum = 0.5 * self.inv_var * g.square().sum() + b * x.shape[1] * self.log_norm
            g.mul_(self.inv_var)
        g.div_(b)
        c = model.config.beta * model.kl_scale
        if windows is not None:
            self._context_grad(windows, g)
        g = self._decoder_backward(g, dhs, dpres)
        kl_sum, g = self._kl_grads(e, b, std, eps, z, g, c / b)  # reparameterisation and KL
        self._encoder_backward(g, b, hs, pres)
        recon = recon_sum / b
        kl = kl_sum / b
        return torch.stack([recon + c * kl, recon, kl])

    def _add_context(self, xb: Tensor, logits: Tensor, b: int) -> Tensor | None:
        """Add the pixel context of the batch to the decoder's (k * b, D) output in place;
        return the unfolded windows for the weights' gradient (None without a context)."""
        if self.context is None:
            return None
        ctx, windows = self.context.context_and_windows(xb)
        logits.view(-1, b, logits.shape[1]).add_(ctx.reshape(b, -1))
        return windows

    def _context_grad(self, windows: Tensor, g: Tensor) -> None:
        """The context weights' .grad from the gradient ``g`` (b, D) at the decoder's output."""
        self.context.weight.grad.copy_(self.context.weight_grad(windows, g))  # type: ignore[union-attr]

    def _encode(self, xb: Tensor) -> tuple[Tensor, int, Tensor, list[Tensor], list[Tensor]]:
        """The batch as rows, its size, and the encoder's output, inputs and pre-activations
        over the batch (and the pseudo-inputs after it)."""
        b = xb.shape[0]
        x = xb.reshape(b, -1)
        xe = x if self.pseudo is None else torch.cat([x, self.pseudo.reshape(
            self.pseudo.shape[0], -1)], dim=0)
        return (x, b, *_mlp_forward(self.enc, self.enc_act, xe))

    def _decoder_backward(self, g: Tensor, dhs: list[Tensor], dpres: list[Tensor]) -> Tensor:
        """Fill the decoder's .grad from the gradient ``g`` at its output; return it at z."""
        for i in range(len(self.dec) - 1, -1, -1):
            lin = self.dec[i]
            torch.mm(g.t(), dhs[i], out=lin.weight.grad)
            torch.sum(g, 0, out=lin.bias.grad)
            g = g @ lin.weight  # gradient w.r.t. this layer's input
            if i > 0:
                g = _act_backward(self.dec_act, g, dpres[i - 1], dhs[i])
        return g

    def _encoder_backward(self, g: Tensor, b: int, hs: list[Tensor], pres: list[Tensor]
                          ) -> None:
        """Fill the encoder's (and the pseudo-inputs') .grad from the gradient at its output."""
        for i in range(len(self.enc) - 1, -1, -1):
            lin = self.enc[i]
            torch.mm(g.t(), hs[i], out=lin.weight.grad)
            torch.sum(g, 0, out=lin.bias.grad)
            if i > 0:
                g = g @ lin.weight
                g = _act_backward(self.enc_act, g, pres[i - 1], hs[i])
            elif self.pseudo is not None:
                torch.mm(g[b:], lin.weight, out=self.pseudo.grad.view(self.pseudo.shape[0], -1))

    @torch.no_grad()
    def iwae_forward_backward(self, xb: Tensor) -> Tensor:
        """The IWAE bound's gradient in every .grad; return [total, recon, kl, iwae_nll] as
        the IWAE families' loss: total = iwae_nll = -bound, recon / kl of the first sample."""
        self._ensure_grads()
        k, lat = self.k, self.latent
        x, b, e, hs, pres = self._encode(xb)
        mu, lv = e[:b, :lat], e[:b, lat:]
        std = torch.exp(0.5 * lv)
        eps = torch.randn((k, b, lat), dtype=mu.dtype, device=mu.device)
        z = (mu + std * eps).reshape(k * b, lat)
        logits, dhs, dpres = _mlp_forward(self.dec, self.dec_act, z)
        windows = self._add_context(xb, logits, b)
        out = logits.view(k, b, -1)
        if self.bernoulli:  # -log p(x | z) = sum(softplus(l) - x l), per sample
            s, log_m = sigmoid_and_log_abs(logits)
            nll = (logits.clamp_min(0.0).sum(1) - log_m.sum(1)).view(k, b) - (out * x).sum(-1)
            g = s.view(k, b, -1).sub_(x)
        else:
            g = out - x
            nll = 0.5 * self.inv_var * g.square().sum(-1) + x.shape[1] * self.log_norm
            g.mul_(self.inv_var)
        if self.pseudo is None:
            log_pz = -0.5 * (z.square() + LOG_2PI).sum(-1)
        else:
            log_pz, r = vamp_responsibilities(z, e[b:, :lat], e[b:, lat:])
        log_pz = log_pz.view(k, b)
        log_q = -0.5 * (eps.square() + lv + LOG_2PI).sum(-1)
        log_w = log_pz - nll - log_q
        lse = torch.logsumexp(log_w, 0)
        w = torch.exp(log_w - lse).div_(b).reshape(k * b, 1)  # each sample's share, over b
        gz = self._decoder_backward(g.view(k * b, -1).mul_(w), dhs, dpres)
        if windows is not None:  # g now holds each sample's weighted gradient
            self._context_grad(windows, g.view(k, b, -1).sum(0))
        if self.pseudo is None:  # d log N(z; 0, I) / dz = -z
            gz.addcmul_(w, z)
        else:
            d_z, d_m, d_v = vamp_grads_from(r, z, e[b:, :lat], e[b:, lat:], w[:, 0])
            gz.addcmul_(w, d_z, value=-1.0)
        gz = gz.view(k, b, lat)
        dlv = (gz * eps).sum(0).mul_(0.5 * std).sub_(0.5 / b)  # log q: -1/2 per dimension
        rows = torch.cat([gz.sum(0), dlv], dim=1)
        if self.pseudo is not None:
            rows = torch.cat([rows, torch.cat([d_m, d_v], dim=1).neg_()], dim=0)
        self._encoder_backward(rows, b, hs, pres)
        total = math.log(k) - lse.mean()
        if self.pseudo is None:  # the IWAE family reports the closed-form Gaussian KL
            kl = 0.5 * (mu.square() + std.square() - 1.0 - lv).sum(1).mean()
        else:
            kl = (log_q[0] - log_pz[0]).mean()
        return torch.stack([total, nll[0].mean(), kl, total])

    def __call__(self, xb: Tensor, yb: Tensor | None = None) -> Tensor:
        parts = self.forward_backward(xb)
        if self.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip, foreach=True)
        self.adam.step()
        return parts
