package io.olmoppl.job;

import io.olmoppl.checkpoint.OlmoConfig;

/** Model FLOPs of a forward pass (free of Spark classes, so that the GPU check can use it without Spark). */
final class ModelFlops {
  private ModelFlops() {}

  /**
   * Forward FLOPs per scored token: 2 x (block matmul params + output projection) + attention scores.
   *
   * @param avgLen average window length: q.k and p.v run over on average half of it (causal)
   */
  static double perToken(OlmoConfig c, double avgLen) {
    long h = c.hiddenSize();
    long perLayer = h * (h + 2L * c.kvDim()) + h * h + 3L * h * c.intermediateSize();
    double attention = 2.0 * 2.0 * h * avgLen / 2;
    return 2.0 * (perLayer * c.numHiddenLayers() + (double) c.vocabRows() * h) + attention * c.numHiddenLayers();
  }
}
