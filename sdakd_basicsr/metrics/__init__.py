"""Library of measures: image quality (``quality``), cost (``cost``), LPIPS/FID (``perceptual``),
image helpers (``images``) and report formatting (``reporting``)."""
