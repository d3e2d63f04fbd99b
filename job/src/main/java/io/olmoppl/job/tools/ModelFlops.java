package io.olmoppl.job.tools;

import io.olmoppl.checkpoint.OlmoConfig;

/**
 * Exact forward FLOPs (2 per multiply-add) of the model, free of Spark classes so that the GPU
 * check can use it: the projections and the MLP at every computed position, q.k and p.v over the
 * causal query-key pairs, the output projection at scored positions only. A mixture of experts
 * counts its router and the experts a token is routed to (top k), not the others.
 */
public final class ModelFlops {
  private ModelFlops() {}

  /**
   * @return FLOPs of one window of {@code t} input positions of which {@code scored} are scored
   */
  public static double window(OlmoConfig c, long t, long scored) {
    long h = c.hiddenSize();
    long mlp = 3L * h * c.intermediateSize(); // up|gate, down
    if (c.experts() != null) { // the router over every expert, then only the top k experts
      mlp = c.experts().count() * h + c.experts().topK() * mlp;
    }
    long perPosition = h * (h + 2L * c.kvDim()) + h * h + mlp; // qkv, out, the MLP
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
