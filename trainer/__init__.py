"""GAN trainer: a U-Net colorizer and a PatchGAN discriminator that becomes the detector.

Needs the `train` extra (torch). Nothing in the runtime (`imgcheck` outside `trainer`/`export`) may import this package.
"""
