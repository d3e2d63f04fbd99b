package io.olmoppl.job.tools;

import io.olmoppl.checkpoint.OlmoConfig;

/**
 * Exact forward FLOPs (2 per multiply-add) of the model, free of Spark classes so that the GPU
 * check can use it: the projections and the MLP at every computed position, q.k and p.v over the
 * causal query-key pairs, the output projection at scored positions only.
 */
public final class ModelFlops {
  private ModelFlops() {}

  /**
   * @return FLOPs of one window of {@code t} input positions of which {@code scored} are scored
   */
  public static double window(OlmoConfig c, long t, long scored) {
    long h = c.hiddenSize();
    long perPosition =
        h * (h + 2L * c.kvDim()) + h * h + 3L * h * c.intermediateSize(); // qkv, out, up|gate, down
    double pairs = t * (t + 1) / 2.0;
    double attention = 2.0 * pairs * c.headDim() * c.numAttentionHeads();
    return c.numHiddenLayers() * (2.0 * perPosition * t + 2.0 * attention)
        + 2.0 * scored * h * c.vocabRows();
  }

  /**
   * @return FLOPs per token of full windows of {@code t} positions, every position scored
   */
  public static double perToken(OlmoConfig c, long t) {
    return window(c, t, t) / t;
  }
}
