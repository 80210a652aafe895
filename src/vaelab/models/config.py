"""Settings of a model: family, network shape, likelihood and objective weights."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ModelConfig:
    """Everything needed to rebuild a model, stored in model.json."""

    model: str = "vae"
    """Family: ae, dae, vae, iwae, cvae, guided-vae, beta-tc-vae, factor-vae, dip-vae, ...
    (see `vaelab models`)."""
    latent_dim: int = 2
    """Size of the code z."""
    hidden: list[int] = field(default_factory=lambda: [256, 128])
    """Hidden layer sizes of the MLP encoder; the decoder mirrors them."""
    decoder_hidden: list[int] | None = None
    """Decoder hidden sizes when they should not mirror the encoder."""
    activation: str = "relu"
    """Hidden activation: relu, leaky_relu, elu, gelu or tanh."""
    batch_norm: bool = False
    """Batch-norm after every hidden layer (dense and convolutional)."""
    dropout: float = 0.0
    """Dropout rate after every dense hidden layer."""
    arch: str = "mlp"
    """mlp or conv."""
    conv_channels: list[int] = field(default_factory=lambda: [32, 64])
    """Channels of the stride-2 conv stages (arch conv); stages stop at a 2x2 feature map."""
    likelihood: str = "auto"
    """auto (follows the data), bernoulli, gaussian (fixed sigma), gaussian-learned."""
    sigma: float = 1.0
    """Standard deviation of the fixed-variance Gaussian likelihood."""
    pixel_context: int = 0
    """Images: radius R of a local autoregressive context in the likelihood (0 = off, a
    factorised decoder): each pixel also reads the R rows above and the R pixels to its left
    (Chen et al. 2017's local receptive field); sampling is then pixel by pixel."""
    beta: float = 1.0
    """Weight of the KL term in the objective (beta-VAE); reported numbers use 1."""
    kl_warmup_epochs: int = 0
    """Epochs over which the KL weight rises linearly from 0 to beta."""
    free_bits: float = 0.0
    """Minimum KL per latent dimension in nats (training objective only)."""
    iwae_k: int = 5
    """Importance samples per example for the iwae objective."""
    noise: str = "gaussian"
    """Denoising corruption: gaussian or mask."""
    noise_factor: float = 0.5
    """dae: noise standard deviation (gaussian) or dropped share of features (mask)."""
    noise_clip: bool = True
    """dae: clip Gaussian-noised inputs to the training data's value range."""
    guide_weight: float = 0.2
    """guided-vae: weight of the label's cross-entropy, in units of the input size D (it is
    multiplied by D): 1 = the label counts as much as the whole input, 0.2 = a fifth of it."""
    cond_dropout: float = 0.1
    """cvae: chance a labelled training row is shown as unlabelled (trains the unknown class)."""
    mmd_weight: float = 100.0
    """wae: weight (lambda) of the MMD between the batch's codes and N(0, I), in nats."""
    mmd_scales: list[float] = field(default_factory=lambda: [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0])
    """wae: scales s of the summed inverse-multiquadratic kernels C / (C + |z - z'|^2),
    C = 2 * latent_dim * s (the prior's variance is 1)."""
    rae_z_weight: float = 0.1
    """rae: weight (beta) of the code penalty |z|^2 / 2 per example, in nats."""
    rae_reg: str = "l2"
    """rae: decoder regulariser: l2 (squared decoder weights), gp (squared gradient of the
    decoder's summed output with respect to z) or none."""
    rae_reg_weight: float = 0.001
    """rae: weight (lambda) of the decoder regulariser, in nats."""
    pseudo_inputs: int = 500
    """vamp: number K of learned pseudo-inputs; the prior is the mean of their K posteriors."""
    flow_steps: int = 2
    """iaf: number of inverse autoregressive flow steps on the posterior sample."""
    flow_hidden: int = 128
    """iaf: width of each flow step's masked (MADE) hidden layer and of the context h."""
    top_latent_dim: int = 0
    """hvae: size of the top code z2 (0 = half of latent_dim, at least 1); latent_dim is z1."""
    codebook_size: int = 512
    """vq-vae: number K of codebook rows (codes); each row has latent_dim entries."""
    commitment: float = 0.25
    """vq-vae: weight (beta) of the commitment loss |z_e - sg(e)|^2 per example, in nats."""
    codebook_decay: float = 0.99
    """vq-vae: decay of the exponential moving averages that update the codebook."""
    dead_code_steps: int = 20
    """vq-vae: restart a code from a recent encoder output after this many training steps
    unused (0 = never; the first step always initialises the codebook from encoder outputs)."""
    code_positions: int = 8
    """vq-vae with arch mlp: length of the code sequence (each position one code)."""
    prior_epochs: int = 10
    """vq-vae: epochs of the PixelCNN code prior, trained after the main epochs."""
    prior_channels: int = 64
    """vq-vae: channels of the gated PixelCNN code prior."""
    prior_layers: int = 5
    """vq-vae: gated layers of the PixelCNN code prior."""
    capacity_max: float = 0.0
    """vae: capacity annealing (Burgess et al. 2018) when above 0: the objective is
    recon + beta * |KL - C| with the KL target C rising linearly from 0 to capacity_max nats
    over capacity_epochs (use a large beta, the paper's 1000)."""
    capacity_epochs: float = 10.0
    """vae with capacity_max: epochs over which the KL target C rises to capacity_max."""
    tc_alpha: float = 1.0
    """beta-tc-vae: weight (alpha) of the index-code mutual information I(x; z); beta weighs
    the total correlation (the paper's 6 on dSprites)."""
    tc_gamma: float = 1.0
    """beta-tc-vae: weight (gamma) of the dimension-wise KL sum_j KL(q(z_j) || p(z_j))."""
    factor_gamma: float = 35.0
    """factor-vae: weight (gamma) of the total correlation estimated by the discriminator."""
    discriminator_hidden: list[int] | None = None
    """factor-vae: hidden layer sizes of the discriminator on codes (default: 6 layers of
    100 x latent_dim units, at most 1000: the paper's 6 x 1000 at latent_dim 10)."""
    discriminator_lr: float = 1e-4
    """factor-vae: learning rate of the discriminator's own Adam (betas 0.5, 0.9)."""
    dip_type: str = "i"
    """dip-vae: i (covariance of the posterior means) or ii (of the aggregate posterior)."""
    dip_lambda_od: float = 10.0
    """dip-vae: weight of the squared off-diagonal covariance entries, in nats."""
    dip_lambda_d: float | None = None
    """dip-vae: weight of the squared distance of the diagonal from 1 (default: 10 x
    dip_lambda_od for type i, dip_lambda_od for type ii)."""
