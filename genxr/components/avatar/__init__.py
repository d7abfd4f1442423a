"""SARAH-style spatially aware conversational avatar: skeleton, motion VAE, flow-matching
latent generator, streaming API, training, evaluation."""
